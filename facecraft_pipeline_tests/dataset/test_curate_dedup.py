"""Duplicates are removed with a record of what they duplicate, and twins never straddle the split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from facecraft_pipeline.dataset.curate import CurateSettings, curate_dataset
from facecraft_pipeline_tests.dataset.items import distinct_items, face_items, item
from facecraft_pipeline_tests.faces.identity_fixtures import identity_embeddings


def test_edits_of_one_photo_collapse_to_its_best_crop_but_a_mirror_image_stays(tmp_path: Path) -> None:
    items = face_items(tmp_path / "crops")
    dataset = curate_dataset(items, tmp_path / "datasets", CurateSettings())
    manifest = json.loads(dataset.manifest_path.read_text())
    kept = {(r["photo_id"]) for r in manifest["images"]}
    assert kept == {"grace/original.jpg", "grace/flip.jpg", "astronaut/original.jpg", "astronaut/flip.jpg"}
    near = [e for e in manifest["excluded"] if e["kind"] == "near_duplicate"]
    assert len(near) == 12
    for entry in near:
        person = entry["photo_id"].split("/")[0]
        assert entry["duplicate_of"]["photo_id"] == f"{person}/original.jpg"
        assert f"photo {person}/original.jpg" in entry["reason"] and "phash bits" in entry["reason"]
    assert dataset.counts["excluded_near_duplicate"] == 12


def test_a_byte_identical_crop_is_dropped_as_an_exact_duplicate_naming_the_one_kept(tmp_path: Path) -> None:
    items = distinct_items(tmp_path, 3)
    copy = item(items[0].crop_path, "album-copy-of-photo-0")
    dataset = curate_dataset([*items, copy], tmp_path / "datasets")
    assert dataset.counts["owner"] == 3
    [(excluded, reason)] = dataset.excluded
    assert excluded.crop_sha256 == items[0].crop_sha256
    assert "exact duplicate" in reason
    other_id = {"photo-0", "album-copy-of-photo-0"} - {excluded.photo_id}
    assert f"photo {other_id.pop()}" in reason


def test_with_dedup_off_near_duplicates_stay_but_land_on_one_side_of_the_split(tmp_path: Path) -> None:
    items = face_items(tmp_path / "crops")
    for seed in range(4):
        settings = CurateSettings(dedup="none", val_fraction=0.5, seed=seed)
        manifest = json.loads(curate_dataset(items, tmp_path / "datasets", settings).manifest_path.read_text())
        assert len(manifest["images"]) == 16
        for person in ("grace", "astronaut"):
            edits = {
                r["split"]
                for r in manifest["images"]
                if r["photo_id"].startswith(person) and "flip" not in r["photo_id"]
            }
            assert len(edits) == 1, (seed, person, edits)


def test_different_crops_of_one_source_photo_share_a_side(tmp_path: Path) -> None:
    items = distinct_items(tmp_path, 12)
    group_photo = [item(i.crop_path, "party.jpg") for i in items[:4]]
    for seed in range(4):
        manifest = json.loads(
            curate_dataset(
                group_photo + items[4:], tmp_path / "datasets", CurateSettings(val_fraction=0.4, seed=seed)
            ).manifest_path.read_text()
        )
        sides = {r["split"] for r in manifest["images"] if r["photo_id"] == "party.jpg"}
        assert len(sides) == 1


def test_embedding_dedup_collapses_each_persons_edits_but_never_merges_two_people(tmp_path: Path) -> None:
    items = face_items(tmp_path / "crops")
    vectors = identity_embeddings()
    embeddings = np.concatenate([vectors["grace"], vectors["astronaut"]])
    settings = CurateSettings(dedup="embedding", dedup_threshold=0.3)
    dataset = curate_dataset(items, tmp_path / "datasets", settings, embeddings=embeddings)
    manifest = json.loads(dataset.manifest_path.read_text())
    assert sorted(r["photo_id"] for r in manifest["images"]) == ["astronaut/original.jpg", "grace/original.jpg"]
    assert all("embedding distance" in reason for _, reason in dataset.excluded)
