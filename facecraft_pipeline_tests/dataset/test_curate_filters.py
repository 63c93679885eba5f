"""Images are written at the training resolution; what cannot be used is excluded with a reason."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facecraft_pipeline.dataset.curate import CurateSettings, curate_dataset
from facecraft_pipeline_tests.dataset.items import distinct_items, item


def test_every_image_is_a_png_at_the_training_resolution(tmp_path: Path) -> None:
    dataset = curate_dataset(distinct_items(tmp_path, 6, size=112), tmp_path / "d", CurateSettings(resolution=64))
    for path in dataset.train_paths + dataset.val_paths:
        with Image.open(path) as image:
            assert (image.format, image.size, image.mode) == ("PNG", (64, 64), "RGB")


def test_crops_smaller_than_the_resolution_are_excluded_not_upsampled(tmp_path: Path) -> None:
    big = distinct_items(tmp_path, 3, size=160)
    small = distinct_items(tmp_path, 2, size=112, first_seed=10)
    dataset = curate_dataset(big + small, tmp_path / "d", CurateSettings(resolution=128))
    assert dataset.counts["owner"] == 3
    assert dataset.counts["excluded_too_small"] == 2
    assert {i.photo_id for i, _ in dataset.excluded} == {"photo-10", "photo-11"}
    assert all(reason == "too small: 112x112 px < 128 px (never upsampled)" for _, reason in dataset.excluded)


def test_a_big_crop_of_a_small_face_is_excluded_too_the_crop_was_upsampled(tmp_path: Path) -> None:
    from dataclasses import replace

    sharp, upsampled = distinct_items(tmp_path, 2, size=160)
    items = [replace(sharp, face_px=300.0), replace(upsampled, face_px=70.0)]
    dataset = curate_dataset(items, tmp_path / "d", CurateSettings(resolution=128))
    assert dataset.counts["owner"] == 1
    [(excluded, reason)] = dataset.excluded
    assert excluded.photo_id == upsampled.photo_id
    assert reason == "too small: the face covers 70 photo px < 128 px (never upsampled)"


def test_an_unreadable_crop_is_excluded_with_the_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    dataset = curate_dataset([*distinct_items(tmp_path, 2), item(broken, "photo-broken")], tmp_path / "d")
    [(excluded, reason)] = dataset.excluded
    assert excluded.photo_id == "photo-broken" and reason.startswith("unreadable:")


def test_manifest_keeps_the_lineage_of_every_image(tmp_path: Path) -> None:
    items = distinct_items(tmp_path, 4)
    manifest = json.loads(curate_dataset(items, tmp_path / "d").manifest_path.read_text())
    by_sha = {i.crop_sha256: i for i in items}
    for record in manifest["images"]:
        source = by_sha[record["crop_sha256"]]
        assert source.box is not None and source.landmarks is not None
        assert record["photo_id"] == source.photo_id and record["photo_sha256"] == source.photo_sha256
        assert record["box"] == list(source.box) and record["landmarks"] == [list(p) for p in source.landmarks]
        assert record["identity_distance"] == source.identity_distance and record["origin"] == "owner"
        assert record["source_size"] == [112, 112]
    assert manifest["settings"]["resolution"] == 64 and manifest["settings"]["dedup_threshold"] == 6.0


def test_bad_settings_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    items = distinct_items(tmp_path, 2)
    with pytest.raises(ValueError, match="dedup"):
        curate_dataset(items, tmp_path / "d", CurateSettings(dedup="ssim"))
    with pytest.raises(ValueError, match="embeddings"):
        curate_dataset(items, tmp_path / "d", CurateSettings(dedup="embedding"))
    with pytest.raises(ValueError, match="external_ratio"):
        curate_dataset(items, tmp_path / "d", CurateSettings(external_ratio=1.0))
    with pytest.raises(ValueError, match="embeddings"):
        curate_dataset(items, tmp_path / "d", embeddings=np.zeros((3, 128)))
    assert not (tmp_path / "d").exists()
