from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from facecraft_pipeline.gan import GanSettings, checkpoint_is_finite, load_generator, sample_images, train_gan
from facecraft_pipeline.gan.sample import write_grid
from facecraft_pipeline.training import ProgressLine, TrainingDivergedError, TrainResult
from facecraft_pipeline_tests.gan.conftest import tiny

KINDS = ["dcgan", "wgan_gp"]


@dataclass
class Trained:
    settings: GanSettings
    root: Path
    result: TrainResult
    lines: list[ProgressLine]


@pytest.fixture(scope="module", params=KINDS)
def trained(request: pytest.FixtureRequest, face_paths: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """A finished 20-step run of each kind (checkpoints at 10 and 20). Tests must not modify its folder."""
    root = tmp_path_factory.mktemp(request.param)
    lines: list[ProgressLine] = []
    settings = tiny(kind=request.param)
    result = train_gan(face_paths, root, settings, progress=[lines.append])
    return Trained(settings, root, result, lines)


def weights(checkpoint: Path) -> dict[str, dict[str, torch.Tensor]]:
    state = torch.load(checkpoint, weights_only=True)
    return {k: state[k] for k in ("G", "G_ema", "D")}


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    for net in wa:
        for name in wa[net]:
            assert torch.equal(wa[net][name], wb[net][name]), f"{net}.{name} differs"


def copy_root(trained: Trained, tmp_path: Path) -> Path:
    return Path(shutil.copytree(trained.root, tmp_path / "root"))


def test_the_run_folder_is_readable_and_names_its_kind_size_and_key(trained: Trained) -> None:
    r = trained.result
    assert r.folder.parent == trained.root and r.folder.name == f"00000-{trained.settings.kind}-upsample-16px-{r.key}"
    record = json.loads((r.folder / "run.json").read_text())
    assert record["status"] == "finished" and record["steps"] == 20 and record["device"] == "cpu"
    assert record["settings"]["run"]["steps"] == 20 and record["inputs"]["images"] == 24
    assert "started" in record["sessions"][0] and "ended" in record["sessions"][0]
    stats = [json.loads(line) for line in (r.folder / "stats.jsonl").read_text().splitlines()]
    assert [row["step"] for row in stats] == [5, 10, 15, 20]


def test_training_writes_a_finite_checkpoint_step_grids_final_grid_and_gif(trained: Trained) -> None:
    r = trained.result
    assert (r.steps, r.resumed_from, r.reused, r.device, r.dtype) == (20, 0, False, "cpu", "float32")
    assert r.artifact("checkpoint").name == "checkpoint-0000020.pt" and checkpoint_is_finite(r.artifact("checkpoint"))
    assert sorted(p.name for p in (r.folder / "samples").iterdir()) == ["step_000010.png", "step_000020.png"]
    assert Image.open(r.artifact("samples")).size == Image.open(r.folder / "samples" / "step_000020.png").size
    assert Image.open(r.artifact("gif")).n_frames == 2
    assert r.images_per_second > 0 and r.seconds > 0
    assert not list(r.folder.rglob("*.tmp"))


def test_progress_is_reported_every_log_every_steps_with_rate_and_eta(trained: Trained) -> None:
    wgan = trained.settings.kind == "wgan_gp"
    expected = {"loss_d", "loss_g"} | ({"gp", "wasserstein"} if wgan else {"d_real", "d_fake"})
    assert [(line.step, line.total) for line in trained.lines] == [(5, 20), (10, 20), (15, 20), (20, 20)]
    for line in trained.lines:
        assert set(line.metrics) == expected and all(np.isfinite(v) for v in line.metrics.values())
        assert line.images_per_second > 0 and line.eta_seconds >= 0
    assert trained.lines[-1].eta_seconds == 0
    assert "step 5/20" in str(trained.lines[0]) and "img/s, ETA" in str(trained.lines[0])
    assert trained.result.metrics == trained.lines[-1].metrics


def test_checkpoint_loads_weights_only_with_everything_needed_to_resume(trained: Trained) -> None:
    state = torch.load(trained.result.artifact("checkpoint"), weights_only=True)
    assert {"G", "G_ema", "D", "opt_g", "opt_d", "rng", "run", "settings"} <= set(state)
    assert state["run"]["step"] == 20 and state["settings"]["resolution"] == 16


def test_reloaded_generator_reproduces_the_saved_grid_and_samples_deterministically(trained: Trained, tmp_path: Path) -> None:
    generator = load_generator(trained.result.artifact("checkpoint"))
    assert not generator.training
    first, again, other = (sample_images(generator, 4, seed) for seed in (1, 1, 2))
    assert all(im.size == (16, 16) and im.mode == "RGB" for im in first)
    assert [np.asarray(a).tolist() for a in first] == [np.asarray(a).tolist() for a in again]
    assert [np.asarray(a).tolist() for a in first] != [np.asarray(a).tolist() for a in other]
    regrid = write_grid(sample_images(generator, 4, seed=0), tmp_path / "grid.png")  # run.seed == 0
    assert np.array_equal(np.asarray(Image.open(regrid)), np.asarray(Image.open(trained.result.artifact("samples"))))


def test_interrupted_training_resumes_from_the_last_checkpoint_to_identical_weights(
        trained: Trained, face_paths: list[Path], tmp_path: Path) -> None:
    def interrupt_at_15(line: ProgressLine) -> None:
        if line.step == 15:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_gan(face_paths, tmp_path, trained.settings, progress=[interrupt_at_15])
    (folder,) = tmp_path.iterdir()
    assert sorted(p.name for p in (folder / "checkpoints").iterdir()) == ["checkpoint-0000010.pt"]
    resumed = train_gan(face_paths, tmp_path, trained.settings)
    assert (resumed.folder, resumed.resumed_from, resumed.steps, resumed.reused) == (folder, 10, 20, False)
    assert_same_weights(resumed.artifact("checkpoint"), trained.result.artifact("checkpoint"))
    assert [json.loads(line)["step"] for line in (folder / "stats.jsonl").read_text().splitlines()] == [5, 10, 15, 20]
    assert len(json.loads((folder / "run.json").read_text())["sessions"]) == 2


def test_a_finished_run_is_reused_without_training(trained: Trained, face_paths: list[Path]) -> None:
    before = trained.result.artifact("checkpoint").stat().st_mtime_ns
    lines: list[ProgressLine] = []
    again = train_gan(face_paths[::-1], trained.root, trained.settings, progress=[lines.append])
    assert again.reused and again.steps == 20 and lines == [] and again.folder == trained.result.folder
    assert again.metrics == trained.result.metrics and again.seconds == trained.result.seconds
    assert trained.result.artifact("checkpoint").stat().st_mtime_ns == before


def test_raising_steps_continues_the_same_run_and_ends_where_a_longer_run_ends(
        trained: Trained, face_paths: list[Path], tmp_path: Path) -> None:
    root = copy_root(trained, tmp_path)
    extended = train_gan(face_paths, root, tiny(kind=trained.settings.kind, steps=25, log_every=7))
    assert (extended.resumed_from, extended.steps, extended.reused, extended.key) == (20, 25, False, trained.result.key)
    straight = train_gan(face_paths, tmp_path / "straight", tiny(kind=trained.settings.kind, steps=25))
    assert_same_weights(extended.artifact("checkpoint"), straight.artifact("checkpoint"))


def test_other_settings_or_images_train_in_a_new_numbered_folder(trained: Trained, face_paths: list[Path], tmp_path: Path) -> None:
    root = copy_root(trained, tmp_path)
    kind = trained.settings.kind
    other_lr = train_gan(face_paths, root, tiny(kind=kind, lr_g=1e-3, steps=2))
    other_images = train_gan(face_paths[:-1], root, tiny(kind=kind, steps=2))
    assert len({trained.result.key, other_lr.key, other_images.key}) == 3
    assert [p.name[:5] for p in sorted(root.iterdir())] == ["00000", "00001", "00002"]


def test_lowering_steps_below_a_trained_run_is_refused_with_the_kept_steps(trained: Trained, face_paths: list[Path],
                                                                          tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"beyond steps=15.*\[10\]"):
        train_gan(face_paths, copy_root(trained, tmp_path), tiny(kind=trained.settings.kind, steps=15))


def test_keep_every_keeps_sweep_checkpoints_beside_the_newest(face_paths: list[Path], tmp_path: Path) -> None:
    result = train_gan(face_paths, tmp_path, tiny(steps=12, checkpoint_every=2, keep_last=2, keep_every=4, sample_every=0))
    assert [step for step, _ in result.checkpoints] == [4, 8, 10, 12]
    assert all(load_generator(path).resolution == 16 for _, path in result.checkpoints)


@pytest.mark.parametrize("kind", KINDS)
def test_diverging_training_raises_and_never_writes_a_non_finite_checkpoint(kind: str, face_paths: list[Path], tmp_path: Path) -> None:
    with pytest.raises(TrainingDivergedError, match="NaN"):
        train_gan(face_paths, tmp_path, tiny(kind=kind, lr_g=1e30, lr_d=1e30, checkpoint_every=1, log_every=1))
    assert all(checkpoint_is_finite(p) for p in tmp_path.rglob("checkpoint-*.pt"))


def test_checkpoint_is_finite_catches_a_nan_in_weights_or_optimizer_state(trained: Trained, tmp_path: Path) -> None:
    checkpoint = trained.result.artifact("checkpoint")
    state = torch.load(checkpoint, weights_only=True)
    state["G"]["stem.0.weight"][0, 0] = float("nan")
    torch.save(state, tmp_path / "bad_weights.pt")
    state = torch.load(checkpoint, weights_only=True)
    next(iter(state["opt_d"]["state"].values()))["exp_avg"].view(-1)[0] = float("inf")
    torch.save(state, tmp_path / "bad_adam.pt")
    assert checkpoint_is_finite(checkpoint)
    assert not checkpoint_is_finite(tmp_path / "bad_weights.pt")
    assert not checkpoint_is_finite(tmp_path / "bad_adam.pt")


@pytest.mark.parametrize(("precision", "dtype"), [("bf16", "bfloat16"), ("fp16", "float16")])
def test_mixed_precision_trains_and_is_recorded(precision: str, dtype: str, face_paths: list[Path], tmp_path: Path) -> None:
    result = train_gan(face_paths, tmp_path, tiny(kind="wgan_gp", steps=4, n_critic=2, mixed_precision=precision))
    assert result.dtype == dtype and checkpoint_is_finite(result.artifact("checkpoint"))
    assert json.loads((result.folder / "run.json").read_text())["dtype"] == dtype
