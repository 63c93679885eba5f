"""Face extraction in shards: every photo in exactly one shard, and shards that add up to one whole run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from facecraft_pipeline.faces.crops_update import update_crops
from facecraft_pipeline.faces.detect import DetectorSettings
from facecraft_pipeline.faces.extract import FaceCropSettings
from facecraft_pipeline.faces.shards import extract_shard, in_shard, shard_keys, shard_of
from facecraft_pipeline.sources.base import sha256_file
from facecraft_pipeline_tests.faces.face_samples import astronaut, coffee, grace_hopper, save, side_by_side

SETTINGS = FaceCropSettings(detector=DetectorSettings(workers=1))


def _library(folder: Path) -> list[tuple[str, str, str]]:
    folder.mkdir()
    save(grace_hopper(), folder / "grace.jpg")
    save(astronaut(), folder / "astronaut.png")
    save(side_by_side(grace_hopper(), astronaut()), folder / "two_people.jpg")
    save(coffee(), folder / "coffee.jpg")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    return [(p.name, str(p), sha256_file(p)) for p in sorted(folder.iterdir())]


def test_every_photo_is_in_exactly_one_shard_and_the_shards_are_about_even():
    ids = [f"2024/IMG_{n:05d}.jpg" for n in range(1600)]
    rows = [(i, f"/photos/{i}", "0" * 64) for i in ids]
    shards = [in_shard(rows, index, 16) for index in range(16)]
    assert sorted(row[0] for shard in shards for row in shard) == sorted(ids)
    assert all(60 <= len(shard) <= 140 for shard in shards), [len(s) for s in shards]  # 100 each on average


def test_a_photos_shard_is_the_same_in_another_process_with_another_hash_seed():
    ids = ["IMG_0001.jpg", "holiday/IMG_0002.HEIC", "caf\udce9.jpg", "01ABCDEF!123"]
    code = "import sys; from facecraft_pipeline.faces.shards import shard_of; print([shard_of(i, 7) for i in sys.argv[1:]])"
    done = subprocess.run([sys.executable, "-c", code, *ids], capture_output=True, text=True, check=True,
                          env={"PYTHONHASHSEED": "12345", "PATH": ""}, errors="surrogateescape")
    assert done.stdout.strip() == str([shard_of(i, 7) for i in ids])


def test_shard_keys_sort_in_shard_order_and_a_count_under_one_is_refused():
    assert shard_keys(3) == ["0", "1", "2"]
    assert shard_keys(16) == sorted(shard_keys(16)) == [f"{n:02d}" for n in range(16)]
    with pytest.raises(ValueError, match="at least 1"):
        shard_keys(0)
    with pytest.raises(ValueError, match="not one of 0..1"):
        in_shard([], 2, 2)


def test_shards_fill_the_cache_so_the_whole_run_decodes_nothing_and_equals_an_unsharded_run(tmp_path):
    rows = _library(tmp_path / "photos")
    sharded, whole = tmp_path / "sharded", tmp_path / "whole"
    results = [extract_shard(rows, index, 2, sharded, SETTINGS) for index in range(2)]
    assert sum(r.counts["photos"] for r in results) == len(rows)
    assert sum(r.counts["computed"] for r in results) == len(rows)

    assembled = update_crops(rows, sharded, SETTINGS)
    reference = update_crops(rows, whole, SETTINGS)

    assert assembled.part.counts["computed"] == 0  # every outcome, the unreadable photo's too, from the shards' cache
    assert assembled.manifest.digest == reference.manifest.digest
    outcome = lambda counts: {k: v for k, v in counts.items() if k not in ("computed", "from_cache")}  # noqa: E731
    assert outcome(assembled.manifest.counts) == outcome(reference.manifest.counts)
    assert [(f.photo_id, f.index, f.crop_sha256, f.landmarks) for f in assembled.manifest.faces] == \
           [(f.photo_id, f.index, f.crop_sha256, f.landmarks) for f in reference.manifest.faces]
    for face in assembled.manifest.kept_faces:
        assert face.crop_path.read_bytes() == (whole / face.crop_path.relative_to(sharded)).read_bytes()


def test_a_shard_whose_photos_all_failed_says_so_and_the_whole_run_still_counts_each_of_them(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        (folder / name).write_bytes(b"")
    rows = [(p.name, str(p), sha256_file(p)) for p in sorted(folder.iterdir())]
    result = extract_shard(rows, 0, 1, tmp_path / "faces", SETTINGS)
    assert result.counts["failed"] == result.counts["photos"] == 3
    assert "every photo of this shard failed (empty-file;" in result.summary

    whole = update_crops(rows, tmp_path / "faces", SETTINGS)
    assert whole.manifest.counts["failed"] == 3 and whole.part.counts["computed"] == 0  # read from the shard's cache
    assert {p.photo_id: p.reason for p in whole.manifest.photos} == {"a.jpg": "empty-file", "b.jpg": "empty-file", "c.jpg": "empty-file"}
