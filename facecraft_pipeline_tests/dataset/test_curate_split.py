"""The train/val split is a pure function of the content and the seed."""

from __future__ import annotations

import json
from pathlib import Path

from facecraft_pipeline.dataset.curate import CurateSettings, curate_dataset
from facecraft_pipeline_tests.dataset.items import distinct_items


def _split(dataset_manifest: Path) -> dict[str, str]:
    manifest = json.loads(dataset_manifest.read_text())
    return {r["crop_sha256"]: r["split"] for r in manifest["images"]}


def test_same_seed_same_split_whatever_the_input_order(tmp_path: Path) -> None:
    items = distinct_items(tmp_path, 20)
    first = curate_dataset(items, tmp_path / "a", CurateSettings(seed=3))
    shuffled = curate_dataset(items[::-1], tmp_path / "b", CurateSettings(seed=3))
    assert _split(first.manifest_path) == _split(shuffled.manifest_path)
    assert first.digest == shuffled.digest


def test_another_seed_draws_another_validation_set(tmp_path: Path) -> None:
    items = distinct_items(tmp_path, 20)
    val_sets = {
        frozenset(p.name for p in curate_dataset(items, tmp_path / "d", CurateSettings(seed=s)).val_paths)
        for s in range(3)
    }
    assert len(val_sets) > 1


def test_val_gets_about_val_fraction_and_train_the_rest(tmp_path: Path) -> None:
    dataset = curate_dataset(distinct_items(tmp_path, 20), tmp_path / "d", CurateSettings(val_fraction=0.15))
    assert (len(dataset.train_paths), len(dataset.val_paths)) == (17, 3)
    assert (dataset.counts["train"], dataset.counts["val"]) == (17, 3)
    assert all(p.parent.name == "train" for p in dataset.train_paths)
    assert all(p.parent.name == "val" for p in dataset.val_paths)


def test_a_tiny_dataset_still_gets_one_validation_image(tmp_path: Path) -> None:
    dataset = curate_dataset(distinct_items(tmp_path, 3), tmp_path / "d", CurateSettings(val_fraction=0.15))
    assert (len(dataset.train_paths), len(dataset.val_paths)) == (2, 1)
