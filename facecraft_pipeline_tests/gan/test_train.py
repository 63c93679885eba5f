from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from facecraft_pipeline.gan import (
    GanDivergedError,
    GanSettings,
    GanTrainResult,
    checkpoint_is_finite,
    load_generator,
    sample_images,
    train_gan,
)
from facecraft_pipeline.gan.sample import write_grid
from facecraft_pipeline_tests.gan.conftest import tiny

KINDS = ["dcgan", "wgan_gp"]


@dataclass
class Trained:
    settings: GanSettings
    out_dir: Path
    result: GanTrainResult
    calls: list[tuple[int, dict[str, float]]]


@pytest.fixture(scope="module", params=KINDS)
def trained(request: pytest.FixtureRequest, face_paths: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """A finished 20-step run of each kind (checkpoints at 10 and 20). Tests must not modify its folder."""
    out_dir = tmp_path_factory.mktemp(request.param)
    calls: list[tuple[int, dict[str, float]]] = []
    settings = tiny(kind=request.param)
    result = train_gan(face_paths, out_dir, settings, on_metrics=lambda s, m: calls.append((s, m)))
    return Trained(settings, out_dir, result, calls)


def weights(checkpoint: Path) -> dict[str, dict[str, torch.Tensor]]:
    state = torch.load(checkpoint, weights_only=True)
    return {k: state[k] for k in ("G", "G_ema", "D")}


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    for net in wa:
        for name in wa[net]:
            assert torch.equal(wa[net][name], wb[net][name]), f"{net}.{name} differs"


def copy_run(trained: Trained, tmp_path: Path) -> Path:
    return Path(shutil.copytree(trained.out_dir, tmp_path / "run"))


def test_training_writes_a_finite_checkpoint_step_grids_final_grid_and_gif(trained: Trained) -> None:
    r = trained.result
    assert (r.steps, r.resumed_from, r.reused, r.device, r.dtype) == (20, 0, False, "cpu", "float32")
    assert r.checkpoint == trained.out_dir / "checkpoint.pt" and checkpoint_is_finite(r.checkpoint)
    assert sorted(p.name for p in (trained.out_dir / "samples").iterdir()) == ["step_000010.png", "step_000020.png"]
    assert Image.open(r.samples).size == Image.open(trained.out_dir / "samples" / "step_000020.png").size
    assert r.gif is not None and Image.open(r.gif).n_frames == 2
    assert r.images_per_second > 0 and r.seconds > 0
    assert not list(trained.out_dir.glob("*.tmp"))


def test_metrics_are_reported_every_log_every_steps_and_are_finite(trained: Trained) -> None:
    wgan = trained.settings.kind == "wgan_gp"
    expected = {"loss_d", "loss_g", "img_per_s"} | ({"gp", "wasserstein"} if wgan else {"d_real", "d_fake"})
    assert [step for step, _ in trained.calls] == [5, 10, 15, 20]
    for _, metrics in trained.calls:
        assert set(metrics) == expected
        assert all(np.isfinite(v) for v in metrics.values())
    assert trained.result.final_metrics == trained.calls[-1][1]


def test_checkpoint_loads_weights_only_with_everything_needed_to_resume(trained: Trained) -> None:
    state = torch.load(trained.result.checkpoint, weights_only=True)
    assert {"G", "G_ema", "D", "opt_g", "opt_d", "rng", "step", "settings"} <= set(state)
    assert state["step"] == 20 and state["settings"]["resolution"] == 16


def test_reloaded_generator_reproduces_the_saved_grid_and_samples_deterministically(trained: Trained,
                                                                                    tmp_path: Path) -> None:
    generator = load_generator(trained.result.checkpoint)
    assert not generator.training
    first, again, other = (sample_images(generator, 4, seed) for seed in (1, 1, 2))
    assert all(im.size == (16, 16) and im.mode == "RGB" for im in first)
    assert [np.asarray(a).tolist() for a in first] == [np.asarray(a).tolist() for a in again]
    assert [np.asarray(a).tolist() for a in first] != [np.asarray(a).tolist() for a in other]
    regrid = write_grid(sample_images(generator, 4, seed=0), tmp_path / "grid.png")  # settings.seed == 0
    assert np.array_equal(np.asarray(Image.open(regrid)), np.asarray(Image.open(trained.result.samples)))


def test_interrupted_training_resumes_from_the_last_checkpoint_to_identical_weights(
        trained: Trained, face_paths: list[Path], tmp_path: Path) -> None:
    settings = trained.settings

    def interrupt_at_15(step: int, metrics: dict[str, float]) -> None:
        if step == 15:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_gan(face_paths, tmp_path, settings, on_metrics=interrupt_at_15)
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["step"] == 10
    resumed = train_gan(face_paths, tmp_path, settings)
    assert (resumed.resumed_from, resumed.steps, resumed.reused) == (10, 20, False)
    assert_same_weights(resumed.checkpoint, trained.result.checkpoint)


def test_a_finished_run_is_reused_without_training(trained: Trained, face_paths: list[Path]) -> None:
    settings = trained.settings
    before = trained.result.checkpoint.stat().st_mtime_ns
    calls: list[int] = []
    again = train_gan(face_paths[::-1], trained.out_dir, settings, on_metrics=lambda s, m: calls.append(s))
    assert again.reused and again.steps == 20 and calls == []
    assert again.final_metrics == trained.result.final_metrics and again.seconds == trained.result.seconds
    assert trained.result.checkpoint.stat().st_mtime_ns == before


def test_a_finished_run_can_be_extended_to_more_steps(trained: Trained, face_paths: list[Path], tmp_path: Path) -> None:
    settings = tiny(kind=trained.settings.kind, steps=25)
    extended = train_gan(face_paths, copy_run(trained, tmp_path), settings)
    assert (extended.resumed_from, extended.steps, extended.reused) == (20, 25, False)


def test_a_checkpoint_from_other_settings_or_images_is_refused_unless_restarting(
        trained: Trained, face_paths: list[Path], tmp_path: Path) -> None:
    kind = trained.settings.kind
    with pytest.raises(ValueError, match=r"lr: 0\.0002 -> 0\.001"):
        train_gan(face_paths, trained.out_dir, tiny(kind=kind, lr=1e-3))
    with pytest.raises(ValueError, match="other images"):
        train_gan(face_paths[:-1], trained.out_dir, tiny(kind=kind))
    fresh = train_gan(face_paths, copy_run(trained, tmp_path), tiny(kind=kind, lr=1e-3, steps=5), restart=True)
    assert (fresh.resumed_from, fresh.steps) == (0, 5)
    assert sorted(p.name for p in (fresh.checkpoint.parent / "samples").iterdir()) == ["step_000005.png"]


@pytest.mark.parametrize("kind", KINDS)
def test_diverging_training_raises_and_never_writes_a_non_finite_checkpoint(kind: str, face_paths: list[Path],
                                                                             tmp_path: Path) -> None:
    with pytest.raises(GanDivergedError, match="NaN"):
        train_gan(face_paths, tmp_path, tiny(kind=kind, lr=1e30, checkpoint_every=1, log_every=1))
    checkpoint = tmp_path / "checkpoint.pt"
    assert not checkpoint.exists() or checkpoint_is_finite(checkpoint)


def test_checkpoint_is_finite_catches_a_nan_in_weights_or_optimizer_state(trained: Trained, tmp_path: Path) -> None:
    state = torch.load(trained.result.checkpoint, weights_only=True)
    state["G"]["net.0.weight"][0, 0, 0, 0] = float("nan")
    torch.save(state, tmp_path / "bad_weights.pt")
    state = torch.load(trained.result.checkpoint, weights_only=True)
    next(iter(state["opt_d"]["state"].values()))["exp_avg"].view(-1)[0] = float("inf")
    torch.save(state, tmp_path / "bad_adam.pt")
    assert checkpoint_is_finite(trained.result.checkpoint)
    assert not checkpoint_is_finite(tmp_path / "bad_weights.pt")
    assert not checkpoint_is_finite(tmp_path / "bad_adam.pt")


@pytest.mark.parametrize(("precision", "dtype"), [("bf16", "bfloat16"), ("fp16", "float16")])
def test_mixed_precision_trains_and_is_recorded(precision: str, dtype: str, face_paths: list[Path],
                                                tmp_path: Path) -> None:
    result = train_gan(face_paths, tmp_path, tiny(kind="wgan_gp", steps=4, n_critic=2, mixed_precision=precision))
    assert result.dtype == dtype and checkpoint_is_finite(result.checkpoint)
    assert torch.load(result.checkpoint, weights_only=True)["dtype"] == dtype
