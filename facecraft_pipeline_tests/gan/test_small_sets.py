"""Any owner set trains: one image, a few, more than a batch; fewer than recommended is a warning, not a failure."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from facecraft_pipeline.gan import load_generator, train_gan
from facecraft_pipeline.gan.settings import RECOMMENDED_IMAGES
from facecraft_pipeline_tests.gan.conftest import drawn_faces, real_faces, tiny


@pytest.mark.parametrize("count", [1, 3, 17])
def test_real_owner_sets_of_1_3_and_17_images_train_with_batches_drawn_with_replacement(count: int, tmp_path: Path) -> None:
    paths = real_faces(tmp_path / "faces", count)
    result = train_gan(paths, tmp_path / "runs", tiny(batch_size=8, steps=6, checkpoint_every=6, sample_every=0))
    run = json.loads((result.folder / "run.json").read_text())
    assert run["status"] == "finished" and result.steps == 6
    assert run["inputs"]["images"] == count and run["inputs"]["distinct_images"] == count
    assert torch.isfinite(torch.tensor(list(result.metrics.values()))).all()
    below = count < RECOMMENDED_IMAGES
    assert bool(run["warnings"]) == below
    if below:
        assert f"{count} distinct training images, fewer than the {RECOMMENDED_IMAGES} recommended" in run["warnings"][0]


def test_copies_of_one_image_count_as_one_distinct_image(tmp_path: Path) -> None:
    [original] = drawn_faces(tmp_path / "faces", 1, (32, 32))
    copies = [original] + [shutil.copy(original, tmp_path / "faces" / f"copy_{i}.png") for i in range(4)]
    result = train_gan([Path(p) for p in copies], tmp_path / "runs", tiny(steps=2, checkpoint_every=2, sample_every=0))
    inputs = json.loads((result.folder / "run.json").read_text())["inputs"]
    assert (inputs["images"], inputs["distinct_images"]) == (5, 1)
    assert load_generator(result.artifact("checkpoint")).resolution == 16


def test_d_loss_on_held_out_faces_is_logged_beside_its_loss_on_training_faces(tmp_path: Path) -> None:
    faces = drawn_faces(tmp_path / "faces", 8, (32, 32))
    result = train_gan(faces[:6], tmp_path / "runs", tiny(steps=20, checkpoint_every=20, sample_every=10), held_out=faces[6:])
    rows = [json.loads(line) for line in (result.folder / "quality.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [10, 20]
    for row in rows:
        assert set(row) >= {"d_loss_held_out", "d_loss_train_real"}
        assert all(math.isfinite(row[k]) for k in ("d_loss_held_out", "d_loss_train_real"))
    assert rows[0] != rows[1]
