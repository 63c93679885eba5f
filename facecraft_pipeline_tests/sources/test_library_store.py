"""The photo listing and the local sync state in SQLite: rows written per change, old JSON state imported."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path

import pytest

from facecraft_pipeline.sources.base import SyncChanges, SyncReport
from facecraft_pipeline.sources.local import LocalFolderSource
from facecraft_pipeline.sources.manifest import PhotoManifest, PhotoStore, manifest_from_report, sync_into


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def folder_with(tmp_path: Path, count: int) -> Path:
    folder = tmp_path / "Pictures"
    for number in range(count):
        write(folder / f"{number // 10}" / f"IMG_{number}.jpg", f"photo {number}".encode())
    write(folder / "notes.txt", b"not a photo")
    return folder


def test_the_store_writes_only_changed_rows_and_keeps_the_digest_of_the_whole_listing(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, 30)
    source = LocalFolderSource(folder, tmp_path / "state")
    store = PhotoStore(tmp_path / "library.sqlite")

    first = store.update(source.sync())
    again = store.update(source.sync())
    write(folder / "9" / "IMG_new.jpg", b"a new photo")
    (folder / "0" / "IMG_3.jpg").unlink()
    report = source.sync()
    third = store.update(report)

    assert (first.written, again.written, again.deleted) == (31, 0, 0)
    assert (third.written, third.deleted) == (1, 1)
    assert third.manifest.digest == manifest_from_report(report).digest != first.manifest.digest
    assert third.manifest.counts() == manifest_from_report(report).counts() == {"total": 31, "ok": 30, "skipped": 1, "failed": 0, "unverified": 0}
    assert third.manifest.records == manifest_from_report(report).records
    assert [r.source_id for r in third.manifest.usable] == [r.source_id for r in manifest_from_report(report).usable]


def test_the_handle_is_a_photo_manifest_that_pickles_small(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, 200)
    update = PhotoStore(tmp_path / "library.sqlite").update(LocalFolderSource(folder, tmp_path / "state").sync())
    blob = pickle.dumps(update.manifest)
    assert len(blob) < 1000
    loaded = pickle.loads(blob)
    assert isinstance(loaded, PhotoManifest) and len(loaded.usable) == 200 and loaded.digest == update.manifest.digest


def test_the_json_sync_state_of_before_is_imported_so_nothing_is_hashed_again(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, 5)
    source = LocalFolderSource(folder, tmp_path / "state")
    entries = {}
    for path in sorted(folder.rglob("*.jpg")):
        info = path.stat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        entries[str(path.relative_to(folder))] = {"size": info.st_size, "mtime_ns": info.st_mtime_ns, "sha256": digest, "status": "ok", "reason": ""}
    legacy = source.state_path.with_suffix(".json")
    legacy.parent.mkdir(parents=True)
    legacy.write_text(json.dumps({"version": 1, "folder": str(source.folder), "entries": entries}))

    report = source.sync()

    assert source.last_hashed == ()
    assert any("imported the sync state of 5 files" in note for note in report.notes)


def test_a_million_files_in_one_folder_is_polled_from_the_folder_alone(tmp_path: Path) -> None:
    """The poll never stats a file: an unchanged folder is one stat, whatever it holds (here 3,000 files)."""
    folder = tmp_path / "flat"
    folder.mkdir()
    for number in range(3000):
        (folder / f"{number}.jpg").write_bytes(b"x")
    past = 1_600_000_000 * 10**9
    os.utime(folder, ns=(past, past))
    source = LocalFolderSource(folder, tmp_path / "state")
    cursor = source.check_for_changes(None).cursor
    for number in range(3000):  # contents change, folder untouched: the poll trusts the folder's mtime
        os.utime(folder / f"{number}.jpg", ns=(past, past))
    os.utime(folder, ns=(past, past))

    check = source.check_for_changes(cursor)
    assert not check.changed and "3000 image files in 1 folder(s)" in check.summary


def test_a_sync_told_as_changes_leaves_the_store_as_a_full_sync_would(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, 30)
    source = LocalFolderSource(folder, tmp_path / "state")
    store = PhotoStore(tmp_path / "library.sqlite")
    first, _ = sync_into(source, store)  # a new store: compared in full
    write(folder / "9" / "IMG_new.jpg", b"a new photo")
    (folder / "0" / "IMG_3.jpg").unlink()
    write(folder / "1" / "clip.mov", b"a video")
    os.replace(write(folder / "edited.part", b"photo 12, edited"), folder / "1" / "IMG_12.jpg")

    changes, update = sync_into(source, store)

    assert isinstance(changes, SyncChanges) and len(changes.upserts) == 3 and changes.gone == ("0/IMG_3.jpg",)
    assert (changes.added, changes.changed, changes.removed) == (("9/IMG_new.jpg",), ("1/IMG_12.jpg",), ("0/IMG_3.jpg",))
    full = manifest_from_report(LocalFolderSource(folder, tmp_path / "other-state").sync())
    assert update.manifest.digest == full.digest and update.manifest.records == full.records


def test_a_run_killed_after_the_store_write_but_before_the_sync_state_is_repaired_next_time(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, 10)
    source = LocalFolderSource(folder, tmp_path / "state")
    store = PhotoStore(tmp_path / "library.sqlite")
    sync_into(source, store)
    os.replace(write(folder / "edited.part", b"photo 4, edited"), folder / "0" / "IMG_4.jpg")

    class Killed(BaseException):
        pass

    def publish_then_die(changes: SyncChanges) -> None:
        store.apply_changes(changes)
        raise Killed  # the process dies here: the store has the edit, the sync state does not

    with pytest.raises(Killed):
        source.sync_changes(publish_then_die)
    changes, update = sync_into(source, store)

    assert changes.upserts and update.manifest.digest == manifest_from_report(LocalFolderSource(folder, tmp_path / "s2").sync()).digest


def test_a_store_out_of_step_with_the_sync_state_is_compared_in_full(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, 10)
    source = LocalFolderSource(folder, tmp_path / "state")
    sync_into(source, PhotoStore(tmp_path / "library.sqlite"))
    (tmp_path / "library.sqlite").unlink()  # the photo store lost; the sync state kept

    report, update = sync_into(source, PhotoStore(tmp_path / "library.sqlite"))
    assert update.manifest.counts()["ok"] == 10 and isinstance(report, SyncReport)

    import sqlite3

    conn = sqlite3.connect(tmp_path / "library.sqlite")
    conn.execute("DELETE FROM photos WHERE source_id='0/IMG_1.jpg'")
    conn.commit()
    conn.close()
    _, repaired = sync_into(source, PhotoStore(tmp_path / "library.sqlite"))
    assert repaired.manifest.counts()["ok"] == 10 and any("out of step" in note for note in repaired.notes)
    assert repaired.manifest.digest == manifest_from_report(LocalFolderSource(folder, tmp_path / "s2").sync()).digest
