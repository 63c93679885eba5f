"""Re-training when photos are added starts from the newest finished run of the same settings."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from facecraft_pipeline.digest import sha256_file
from facecraft_pipeline.gan import build_generator, train_gan
from facecraft_pipeline_tests.gan.conftest import drawn_faces, tiny


def weights(result) -> dict[str, torch.Tensor]:
    return torch.load(result.artifact("checkpoint"), weights_only=True)["G"]


def test_added_photos_warm_start_from_the_previous_run_and_record_it(tmp_path: Path) -> None:
    faces = drawn_faces(tmp_path / "faces", 6, (32, 32))
    first = train_gan(faces[:5], tmp_path / "runs", tiny(steps=40, checkpoint_every=20, sample_every=0))
    again = tiny(steps=40, checkpoint_every=20, sample_every=0, warm_start_steps=1)
    warm = train_gan(faces, tmp_path / "runs", again)
    record = json.loads((warm.folder / "run.json").read_text())
    assert record["warm_start_from"] == {"folder": str(first.folder), "data_digest": json.loads(
        (first.folder / "run.json").read_text())["inputs"]["digest"], "step": 40}
    assert warm.steps == 1 and record["target_steps"] == 1
    # one Adam step moves each weight by about the learning rate: the warm run started at the first run's weights
    step = 3 * again.lr_g
    moved = {name: float((tensor - weights(warm)[name]).abs().max()) for name, tensor in weights(first).items() if _parameter(name)}
    assert max(moved.values()) <= step, moved
    start = build_generator(again).state_dict()  # where a cold run starts: far from the first run's end
    assert max(float((t - start[n]).abs().max()) for n, t in weights(first).items() if _parameter(n)) > 10 * step
    assert train_gan(faces, tmp_path / "runs", again).reused  # the finished warm run is found again, not extended


def _parameter(name: str) -> bool:
    return not name.endswith(("running_mean", "running_var", "num_batches_tracked", "control_default"))


def test_warm_start_off_or_nothing_to_start_from_trains_from_scratch(tmp_path: Path) -> None:
    faces = drawn_faces(tmp_path / "faces", 6, (32, 32))
    settings = tiny(steps=4, checkpoint_every=4, sample_every=0)
    first = train_gan(faces[:5], tmp_path / "runs", settings)
    cold = train_gan(faces, tmp_path / "runs", tiny(steps=4, checkpoint_every=4, sample_every=0, warm_start=False))
    for result in (first, cold):
        record = json.loads((result.folder / "run.json").read_text())
        assert "warm_start_from" not in record and result.steps == 4
    other_recipe = train_gan(faces, tmp_path / "runs", tiny(steps=4, checkpoint_every=4, sample_every=0, latent_dim=8))
    assert "warm_start_from" not in json.loads((other_recipe.folder / "run.json").read_text())


def test_a_run_on_other_images_does_not_warm_start_from_a_library_it_mostly_did_not_see(tmp_path: Path) -> None:
    faces = drawn_faces(tmp_path / "faces", 8, (32, 32))
    settings = tiny(steps=4, checkpoint_every=4, sample_every=0)
    first = train_gan(faces[:4], tmp_path / "runs", settings)
    assert sorted((first.folder / "inputs.sha256").read_text().split()) == sorted(sha256_file(p) for p in faces[:4])
    other_library = train_gan(faces[3:7], tmp_path / "runs", settings)  # 1 of the first run's 4 images: another library
    assert "warm_start_from" not in json.loads((other_library.folder / "run.json").read_text()) and other_library.steps == 4
    one_removed_one_added = train_gan([*faces[1:4], faces[7]], tmp_path / "runs", settings)  # 3 of 4 still here
    assert json.loads((one_removed_one_added.folder / "run.json").read_text())["warm_start_from"]["folder"] == str(first.folder)
