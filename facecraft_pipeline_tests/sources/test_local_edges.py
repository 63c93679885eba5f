"""Local folder edge cases: every file lands in the listing, GIFs are photos, symbolic links follow a policy."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facecraft_pipeline.imaging import load_rgb
from facecraft_pipeline.sources.base import SyncReport
from facecraft_pipeline.sources.local import LocalFolderSource
from facecraft_pipeline.sources.local_settings import LocalFolderSettings
from facecraft_pipeline.sources.manifest import manifest_from_report


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (80, 80), colour) for colour in ((200, 30, 30), (30, 200, 30), (30, 30, 200))]
    out = io.BytesIO()
    frames[0].save(out, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return out.getvalue()


def statuses(report: SyncReport) -> dict[str, tuple[str, str]]:
    return {p.source_id: (p.status, p.reason) for p in report.photos}


def source(folder: Path, data_root: Path | None = None, **options: object) -> LocalFolderSource:
    return LocalFolderSource(folder, folder.parent / "state", LocalFolderSettings(**options), data_root)  # type: ignore[arg-type]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "Pictures"
    root.mkdir()
    (root / "a.jpg").write_bytes(b"photo a")
    return root


def test_an_animated_gif_is_a_photo_decoded_from_its_first_frame(folder: Path) -> None:
    (folder / "party.gif").write_bytes(animated_gif())

    report = source(folder).sync()

    assert statuses(report)["party.gif"] == ("ok", "")
    pixels = load_rgb(folder / "party.gif")
    assert pixels.shape == (80, 80, 3)
    assert np.abs(pixels[40, 40].astype(int) - (200, 30, 30)).max() < 20, "the first frame"


def test_every_file_lands_in_the_listing_and_other_types_are_skipped_with_their_type(folder: Path) -> None:
    (folder / "clip.mov").write_bytes(b"a video")
    (folder / "README").write_bytes(b"no extension")
    (folder / "trip").mkdir()
    (folder / "trip" / "scan.XYZ").write_bytes(b"?")

    report = source(folder).sync()

    assert statuses(report) == {
        "a.jpg": ("ok", ""),
        "clip.mov": ("skipped", "unsupported type: .mov"),
        "README": ("skipped", "unsupported type: no file extension"),
        "trip/scan.XYZ": ("skipped", "unsupported type: .xyz"),
    }
    assert report.added == ("a.jpg",), "other files are listed, not counted as new photos"
    counts = manifest_from_report(report).counts()
    assert (counts["total"], counts["ok"], counts["skipped"]) == (4, 1, 3)

    src = source(folder)
    cursor = src.check_for_changes(None).cursor
    (folder / "more.txt").write_bytes(b"notes")
    assert not src.check_for_changes(cursor).changed, "a new non-photo file does not start a run"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "x.jpg").write_bytes(b"outside photo")
    (elsewhere / "album").mkdir()
    (elsewhere / "album" / "y.jpg").write_bytes(b"outside album photo")
    return elsewhere


def test_by_default_links_inside_the_folder_are_followed_and_links_outside_are_recorded_not_followed(
        folder: Path, outside: Path) -> None:
    (folder / "inner").mkdir()
    (folder / "inner" / "b.jpg").write_bytes(b"photo b")
    (folder / "alias.jpg").symlink_to(folder / "inner" / "b.jpg")
    (folder / "out.jpg").symlink_to(outside / "x.jpg")
    (folder / "out-album").symlink_to(outside / "album", target_is_directory=True)
    (folder / "inner" / "loop").symlink_to(folder, target_is_directory=True)

    report = source(folder).sync()

    found = statuses(report)
    assert found["alias.jpg"] == ("ok", "") and found["inner/b.jpg"] == ("ok", "")
    assert found["out.jpg"][0] == "skipped" and "outside the photo folder" in found["out.jpg"][1]
    assert found["out-album"][0] == "skipped" and "outside the photo folder" in found["out-album"][1]
    assert not any(rel.startswith("out-album/") or rel.startswith("inner/loop/") for rel in found)
    assert any("inner/loop/" in note for note in report.notes), "the loop is cut, and said so"


def test_follow_takes_links_elsewhere_but_never_into_the_data_root(folder: Path, outside: Path, tmp_path: Path) -> None:
    data_root = tmp_path / "data"
    (data_root / "crops").mkdir(parents=True)
    (data_root / "crops" / "face.png").write_bytes(b"a crop, not a photo")
    (folder / "out.jpg").symlink_to(outside / "x.jpg")
    (folder / "out-album").symlink_to(outside / "album", target_is_directory=True)
    (folder / "crops").symlink_to(data_root / "crops", target_is_directory=True)
    (folder / "face.png").symlink_to(data_root / "crops" / "face.png")

    found = statuses(source(folder, data_root=data_root, symlinks="follow").sync())

    assert found["out.jpg"] == ("ok", "") and found["out-album/y.jpg"] == ("ok", "")
    for rel in ("crops", "face.png"):
        assert found[rel] == ("skipped", "symbolic link into the data root: never followed")
    assert not any(rel.startswith("crops/") for rel in found)


def test_skip_follows_no_link_and_a_data_root_inside_the_folder_is_never_listed(folder: Path, tmp_path: Path) -> None:
    (folder / "alias.jpg").symlink_to(folder / "a.jpg")
    data_root = folder / "facecraft-data"
    (data_root / "photos").mkdir(parents=True)
    (data_root / "photos" / "copy.jpg").write_bytes(b"a mirrored photo")

    report = source(folder, data_root=data_root, symlinks="skip").sync()

    found = statuses(report)
    assert found["alias.jpg"] == ("skipped", "symbolic link: not followed (symlinks='skip')")
    assert not any(rel.startswith("facecraft-data/") for rel in found)
    assert any("data root" in note for note in report.notes)


def test_the_symlink_policy_is_a_validated_setting() -> None:
    with pytest.raises(ValueError, match=r"LocalFolderSettings.symlinks must be one of \['inside', 'follow', 'skip'\]"):
        LocalFolderSettings(symlinks="always")


if os.name == "nt":  # pragma: no cover
    pytestmark = pytest.mark.skip(reason="symbolic links need privileges on Windows")
