"""The demo album: deterministic, with known ground truth, and synced like any local folder."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import dlib
import numpy as np
import pytest
from PIL import Image, ImageOps

from facecraft_pipeline.sources.base import SyncReport, sha256_file
from facecraft_pipeline.sources.demo_album import (
    BROKEN_NAME,
    DEMO_OTHER,
    DEMO_OWNER,
    DemoAlbumSource,
    build_demo_album,
    demo_ground_truth,
    demo_reference_photos,
)


def image_files(folder: Path) -> dict[str, str]:
    return {path.name: sha256_file(path) for path in sorted(folder.iterdir()) if not path.name.startswith(".")}


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoAlbumSource, SyncReport, SyncReport]:
    """The album as the `photos` asset meets it: built by the source's first sync, then synced again."""
    root = tmp_path_factory.mktemp("demo")
    source = DemoAlbumSource(root / "album", root / "state")
    return source, source.sync(), source.sync()


@pytest.fixture(scope="module")
def album(synced: tuple[DemoAlbumSource, SyncReport, SyncReport]) -> Path:
    return synced[0].folder


def test_the_album_is_byte_identical_for_a_seed(album: Path, tmp_path: Path) -> None:
    build_demo_album(tmp_path / "again", seed=0)

    assert image_files(tmp_path / "again") == image_files(album)


def test_the_first_sync_builds_and_lists_the_album_and_the_second_changes_nothing(
    synced: tuple[DemoAlbumSource, SyncReport, SyncReport], album: Path
) -> None:
    source, first, second = synced

    assert set(first.added) == set(demo_ground_truth(album)) == set(image_files(album))
    assert all(photo.status == "ok" for photo in first.photos)  # the broken JPEG too: decoding is checked later
    assert (second.added, second.changed, second.removed) == ((), (), ())
    assert second.photos == first.photos
    assert first.source == source.description and "demo-album" in source.description


def test_polling_the_demo_source_changes_only_when_the_album_does(
    synced: tuple[DemoAlbumSource, SyncReport, SyncReport], album: Path
) -> None:
    source = synced[0]
    cursor = source.check_for_changes(None).cursor

    assert not source.check_for_changes(cursor).changed


def test_ground_truth_has_two_people_photos_of_both_photos_without_faces_and_a_broken_file(album: Path) -> None:
    truth = demo_ground_truth(album)
    kinds = Counter(info["kind"] for info in truth.values())

    assert kinds == {"owner": 24, "other": 12, "no_face": 4, "both": 2, "broken": 1}
    assert {person for info in truth.values() for person in info["people"]} == {DEMO_OWNER, DEMO_OTHER}
    both = [info["people"] for info in truth.values() if info["kind"] == "both"]
    assert all(sorted(people) == sorted([DEMO_OWNER, DEMO_OTHER]) for people in both)
    assert all(info["people"] == [] for info in truth.values() if info["kind"] in ("no_face", "broken"))
    assert truth[BROKEN_NAME]["kind"] == "broken"
    assert Counter(Path(name).suffix for name in truth)[".png"] >= 3


def test_every_photo_decodes_at_a_phone_export_size_except_the_truncated_one(album: Path) -> None:
    for name, info in demo_ground_truth(album).items():
        with Image.open(album / name) as image:
            if info["kind"] == "broken":
                with pytest.raises(OSError, match="truncated"):
                    image.load()
            else:
                image.load()
                assert 380 <= max(image.size) <= 1000, name


def test_exif_rotated_photos_show_a_face_only_after_applying_the_orientation(album: Path) -> None:
    detector = dlib.get_frontal_face_detector()
    rotated = {name: info for name, info in demo_ground_truth(album).items() if info["exif_orientation"]}
    assert {info["exif_orientation"] for info in rotated.values()} == {3, 6, 8}

    for name, info in rotated.items():
        with Image.open(album / name) as image:
            assert image.getexif()[0x0112] == info["exif_orientation"]
            raw = np.asarray(image.convert("RGB"))
            upright = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
        assert raw.shape != upright.shape or not np.array_equal(raw, upright), name
        assert len(detector(upright, 0)) == len(info["people"]), name
        assert len(detector(raw, 0)) == 0, name


def test_reference_photos_are_distinct_owner_photos_not_in_the_album(album: Path, tmp_path: Path) -> None:
    references = demo_reference_photos(tmp_path / "refs")
    hashes = {sha256_file(path) for path in references}

    assert 2 <= len(references) <= 3 and len(hashes) == len(references)
    assert hashes.isdisjoint(image_files(album).values())
    assert all(path.parent == tmp_path / "refs" for path in references)
    detector = dlib.get_frontal_face_detector()
    for path in references:
        assert len(detector(np.asarray(Image.open(path).convert("RGB")), 0)) == 1


def test_a_folder_built_for_one_seed_is_not_silently_reused_for_another(album: Path) -> None:
    with pytest.raises(ValueError, match="seed 0"):
        build_demo_album(album, seed=1)
