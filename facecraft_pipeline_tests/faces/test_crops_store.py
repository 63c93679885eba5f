"""The stored face-crops manifest: equal to a whole extraction, written per changed photo, safe to kill."""

from __future__ import annotations

import json
import pickle
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from facecraft_pipeline.faces.crops_manifest import CropsManifest, StoredCropsManifest
from facecraft_pipeline.faces.crops_store import STORE_NAME, CropsStore
from facecraft_pipeline.faces.crops_update import update_crops
from facecraft_pipeline.faces.detect import DetectorSettings
from facecraft_pipeline.faces.extract import FaceCropSettings, PhotoInput, extract_faces
from facecraft_pipeline.sources.base import sha256_file
from facecraft_pipeline.sqlite_store import StoreError, library_lock
from facecraft_pipeline_tests.faces.face_samples import astronaut, coffee, grace_hopper, save

SETTINGS = FaceCropSettings(detector=DetectorSettings(workers=1))


def photo(folder: Path, name: str, image) -> PhotoInput:  # noqa: ANN001
    path = save(image, folder / name)
    return PhotoInput(name, path, sha256_file(path))


@pytest.fixture
def library(tmp_path: Path) -> dict[str, PhotoInput]:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    return {
        "grace.jpg": photo(folder, "grace.jpg", grace_hopper()),
        "astronaut.png": photo(folder, "astronaut.png", astronaut()),
        "coffee.jpg": photo(folder, "coffee.jpg", coffee()),
        "broken.jpg": PhotoInput("broken.jpg", folder / "broken.jpg", sha256_file(folder / "broken.jpg")),
    }


def essentials(manifest: CropsManifest) -> tuple:
    """What a later stage reads, without paths or cache flags."""
    photos = sorted((p.photo_id, p.photo_sha256, p.status, p.reason, p.faces, p.kept) for p in manifest.photos)
    faces = sorted((f.photo_id, f.index, f.kept, f.reason, f.crop_sha256, f.box) for f in manifest.faces)
    return photos, faces


def test_an_update_computes_only_new_photos_and_equals_a_whole_extraction(library: dict[str, PhotoInput], tmp_path: Path) -> None:
    out = tmp_path / "faces"
    first = update_crops(list(library.values())[:3], out, SETTINGS)
    assert first.part.counts["computed"] == 3

    again = update_crops(list(library.values())[:3], out, SETTINGS)
    assert (again.part.counts["photos"], again.manifest.counts["computed"], again.manifest.counts["from_cache"]) == (0, 0, 3)
    assert again.manifest.digest == first.manifest.digest

    current = [library["grace.jpg"], library["coffee.jpg"], library["broken.jpg"]]  # astronaut left, broken came
    later = update_crops(current, out, SETTINGS)
    whole = extract_faces(current, tmp_path / "whole", SETTINGS)

    assert later.part.counts["photos"] == 1 and later.removed == 1
    assert StoredCropsManifest.open(out / STORE_NAME).processed_photos() == whole.processed_photos() != {}
    assert essentials(later.manifest) == essentials(whole)
    assert later.manifest.digest == whole.digest
    assert later.manifest.counts == whole.counts | {"computed": 1, "from_cache": 2}
    assert later.manifest.reasons == whole.reasons
    assert [f.photo_id for f in later.manifest.kept_faces] == ["grace.jpg"]


def test_the_handle_pickles_small_and_reads_its_rows_from_the_store(library: dict[str, PhotoInput], tmp_path: Path) -> None:
    update = update_crops(list(library.values()), tmp_path / "faces", SETTINGS)
    blob = pickle.dumps(update.manifest)
    assert len(blob) < 3000, "a handle, not the rows"
    loaded = pickle.loads(blob)
    assert isinstance(loaded, CropsManifest) and essentials(loaded) == essentials(update.manifest)
    assert loaded.digest == update.manifest.digest


def test_manifest_json_points_at_the_store_and_an_export_is_a_version_1_manifest(library: dict[str, PhotoInput], tmp_path: Path) -> None:
    out = tmp_path / "faces"
    stored = update_crops(list(library.values()), out, SETTINGS).manifest
    stored.write_pointer(out / "manifest.json")
    assert json.loads((out / "manifest.json").read_text())["version"] == 2

    via_pointer = CropsManifest.read_json(out / "manifest.json")
    stored.write_json(tmp_path / "export.json")
    exported = CropsManifest.read_json(tmp_path / "export.json")

    assert isinstance(via_pointer, StoredCropsManifest)
    assert essentials(exported) == essentials(via_pointer) and exported.digest == stored.digest
    assert all(f.crop_path is not None and f.crop_path.is_file() for f in exported.kept_faces)


def test_a_crop_deleted_by_hand_is_made_again(library: dict[str, PhotoInput], tmp_path: Path) -> None:
    out = tmp_path / "faces"
    first = update_crops([library["grace.jpg"]], out, SETTINGS).manifest
    (crop,) = [f.crop_path for f in first.kept_faces]
    crop.unlink()

    again = update_crops([library["grace.jpg"]], out, SETTINGS)

    assert again.part.counts["photos"] == 1 and crop.is_file()
    assert again.manifest.digest == first.digest


def test_a_library_whose_photos_all_failed_is_a_manifest_of_failures(library: dict[str, PhotoInput], tmp_path: Path) -> None:
    update = update_crops([library["broken.jpg"]], tmp_path / "faces", SETTINGS)
    counts = update.manifest.counts
    assert (counts["photos"], counts["failed"], counts["kept"]) == (1, 1, 0)
    assert update.manifest.reasons == {"truncated": 1}
    assert update.manifest.kept_faces == ()


_KILLED_WRITER = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from facecraft_pipeline.faces.crops_manifest import CropsManifest
    from facecraft_pipeline.faces.crops_store import CropsStore

    whole = CropsManifest.read_json(Path(sys.argv[2]))

    class DiesHalfway(list):
        def __iter__(self):
            for number, item in enumerate(list.__iter__(self)):
                if number == 1:
                    os.kill(os.getpid(), signal.SIGKILL)  # mid-transaction: rows of photo 0 already deleted
                yield item

    header = {"settings_key": whole.settings_key, "crop_size": whole.crop_size, "detector": whole.detector, "settings": whole.settings}
    CropsStore(Path(sys.argv[1])).apply(header, DiesHalfway(whole.photos), whole.faces, removed=[])
    """
)


def test_a_run_killed_mid_write_leaves_the_last_state_and_the_next_run_recovers(library: dict[str, PhotoInput], tmp_path: Path) -> None:
    out = tmp_path / "faces"
    photos = list(library.values())
    before = update_crops(photos[:2], out, SETTINGS).manifest
    whole = extract_faces(photos, out, SETTINGS)
    whole.write_json(tmp_path / "whole.json")

    killed = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(out / STORE_NAME), str(tmp_path / "whole.json")])
    assert killed.returncode == -9

    assert CropsStore(out / STORE_NAME).summary().digest == before.digest, "the killed transaction left nothing"
    after = update_crops(photos, out, SETTINGS)
    assert after.manifest.digest == whole.digest and after.manifest.counts["photos"] == len(photos)


def test_two_runs_at_once_on_one_data_root_get_one_sentence(tmp_path: Path) -> None:
    with library_lock(tmp_path, "photos"):
        with pytest.raises(StoreError, match=r"^another run is updating the photo library in .*\(photos, pid \d+"):
            with library_lock(tmp_path, "face_crops", wait_s=0.3):
                pass
    with library_lock(tmp_path, "face_crops", wait_s=0.3):  # released: the next run goes ahead
        pass


def test_a_store_from_a_newer_version_or_not_a_store_is_refused_in_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / STORE_NAME
    update_crops([], tmp_path, SETTINGS)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version=99")
    conn.close()
    with pytest.raises(StoreError, match="newer FaceCraft"):
        CropsStore(path).summary()
    garbage = tmp_path / "other" / STORE_NAME
    garbage.parent.mkdir()
    garbage.write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreError, match="is not a FaceCraft store"):
        CropsStore(garbage).summary()


def test_new_settings_rebuild_the_manifest_from_the_per_photo_cache(library: dict[str, PhotoInput], tmp_path: Path) -> None:
    out = tmp_path / "faces"
    update_crops(list(library.values()), out, SETTINGS)
    bigger = FaceCropSettings(crop_size=96, detector=DetectorSettings(workers=1))
    rebuilt = update_crops(list(library.values()), out, bigger)
    assert rebuilt.rebuilt and rebuilt.manifest.digest == extract_faces(list(library.values()), tmp_path / "whole", bigger).digest


def test_facecraft_manifest_exports_the_stores_as_json(library: dict[str, PhotoInput], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from facecraft_pipeline.cli import main
    from facecraft_pipeline.sources.local import LocalFolderSource
    from facecraft_pipeline.sources.manifest import PhotoStore

    home = tmp_path / "home"
    monkeypatch.setenv("FACECRAFT_HOME", str(home))
    stored = update_crops(list(library.values()), home / "faces", SETTINGS).manifest
    PhotoStore(home / "photos" / "library.sqlite").update(LocalFolderSource(tmp_path / "photos", tmp_path / "state").sync())

    assert main(["manifest", "faces", "--out", str(tmp_path / "faces.json")]) == 0
    assert main(["manifest", "photos", "--out", str(tmp_path / "photos.json")]) == 0

    assert CropsManifest.read_json(tmp_path / "faces.json").digest == stored.digest
    photos = json.loads((tmp_path / "photos.json").read_text())["photos"]
    assert sorted(p["source_id"] for p in photos) == sorted(library)
