"""LocalFolderSource: photos stay in place, re-syncs hash only what was touched, bad files never stop a sync."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from PIL import Image

from facecraft_pipeline.sources.base import PhotoRecord, SyncReport
from facecraft_pipeline.sources.local import LocalFolderSource, _folder_digest
from facecraft_pipeline.sources.local_settings import LocalFolderSettings


def write(path: Path, data: bytes, mtime_s: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime_s is not None:
        os.utime(path, ns=(mtime_s * 10**9, mtime_s * 10**9))
    return path


def by_id(report: SyncReport) -> dict[str, PhotoRecord]:
    return {photo.source_id: photo for photo in report.photos}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "Pictures"
    write(root / "a.jpg", b"photo a", 1_700_000_000)
    write(root / "trip" / "b.PNG", b"photo b", 1_700_000_100)
    write(root / "trip" / "day2" / "c.webp", b"photo c", 1_700_000_200)
    write(root / "notes.txt", b"not a photo")
    write(root / ".hidden.jpg", b"hidden file")
    write(root / ".thumbnails" / "d.jpg", b"inside a hidden folder")
    return root


def source_for(folder: Path, data_root: Path | None = None, **options: object) -> LocalFolderSource:
    settings = LocalFolderSettings(**options)  # type: ignore[arg-type]
    return LocalFolderSource(folder, folder.parent / "state", settings=settings, data_root=data_root)


def ok_ids(report: SyncReport) -> list[str]:
    return [photo.source_id for photo in report.photos if photo.status == "ok"]


def test_first_sync_lists_every_image_in_place_with_its_hash_and_the_rest_as_skipped(folder: Path) -> None:
    report = source_for(folder).sync()

    photos = by_id(report)
    assert list(photos) == ["a.jpg", "notes.txt", "trip/b.PNG", "trip/day2/c.webp"]
    assert (photos["notes.txt"].status, photos["notes.txt"].reason) == ("skipped", "unsupported type: .txt")
    assert report.added == ("a.jpg", "trip/b.PNG", "trip/day2/c.webp")
    assert report.changed == () and report.removed == ()
    b = photos["trip/b.PNG"]
    assert (b.status, b.name, b.size) == ("ok", "b.PNG", len(b"photo b"))
    assert b.sha256 == hashlib.sha256(b"photo b").hexdigest()
    assert b.path == (folder / "trip" / "b.PNG").resolve()  # the original file, nothing copied
    assert b.modified is not None and datetime.fromisoformat(b.modified).timestamp() == 1_700_000_100
    assert report.source == f"local:{folder.resolve()}"


def test_non_recursive_source_lists_only_the_top_folder(folder: Path) -> None:
    assert ok_ids(source_for(folder, recursive=False).sync()) == ["a.jpg"]


def test_suffixes_choose_the_file_types_case_insensitively(folder: Path) -> None:
    assert ok_ids(source_for(folder, suffixes=".png, WEBP").sync()) == [
        "trip/b.PNG",
        "trip/day2/c.webp",
    ]


def test_resync_reports_added_changed_and_removed_and_hashes_only_those(folder: Path) -> None:
    source = source_for(folder)
    source.sync()
    write(folder / "a.jpg", b"photo a, edited", 1_700_001_000)
    (folder / "trip" / "b.PNG").unlink()
    write(folder / "new.jpeg", b"a new photo", 1_700_002_000)

    report = source.sync()

    assert report.added == ("new.jpeg",)
    assert report.changed == ("a.jpg",)
    assert report.removed == ("trip/b.PNG",)
    assert source.last_hashed == ("a.jpg", "new.jpeg")
    assert by_id(report)["a.jpg"].sha256 == hashlib.sha256(b"photo a, edited").hexdigest()


def test_a_second_sync_of_an_unchanged_folder_reads_no_file_and_reports_nothing(folder: Path) -> None:
    source = source_for(folder)
    first = source.sync()
    assert len(source.last_hashed) == 3

    second = source_for(folder).sync()  # a new process: the cache lives in state_dir

    assert (second.added, second.changed, second.removed) == ((), (), ())
    assert second.photos == first.photos


def test_size_and_mtime_vouch_for_the_content_so_unchanged_stats_are_not_rehashed(folder: Path) -> None:
    """The rsync-style quick check: same size and mtime_ns means the cached hash is trusted."""
    source = source_for(folder)
    before = by_id(source.sync())["a.jpg"].sha256
    write(folder / "a.jpg", b"PHOTO A", 1_700_000_000)  # same size, same mtime, different bytes

    assert by_id(source.sync())["a.jpg"].sha256 == before
    assert source.last_hashed == ()


def test_a_touched_but_identical_file_is_rehashed_and_not_reported_changed(folder: Path) -> None:
    source = source_for(folder)
    source.sync()
    os.utime(folder / "a.jpg", ns=(1_800_000_000 * 10**9, 1_800_000_000 * 10**9))

    report = source.sync()

    assert source.last_hashed == ("a.jpg",)
    assert report.changed == ()


def test_an_empty_file_is_skipped_with_a_reason_and_counts_as_changed_once_filled(folder: Path) -> None:
    write(folder / "empty.jpg", b"", 1_700_000_000)
    source = source_for(folder)

    empty = by_id(source.sync())["empty.jpg"]
    assert (empty.status, empty.reason, empty.sha256) == ("skipped", "empty file", None)

    write(folder / "empty.jpg", b"now a photo", 1_700_000_500)
    report = source.sync()
    assert report.changed == ("empty.jpg",)
    assert by_id(report)["empty.jpg"].status == "ok"


def test_a_file_over_the_size_limit_is_skipped_with_a_reason(folder: Path) -> None:
    write(folder / "huge.jpg", b"x" * 3000)

    report = source_for(folder, max_file_mb=0.002).sync()

    huge = by_id(report)["huge.jpg"]
    assert (huge.status, huge.sha256) == ("skipped", None)
    assert huge.reason == "0.003 MB is over the 0.002 MB limit"
    assert [p.source_id for p in report.ok] == ["a.jpg", "trip/b.PNG", "trip/day2/c.webp"]


def test_a_file_that_cannot_be_read_is_failed_with_a_reason_and_the_sync_goes_on(folder: Path) -> None:
    (folder / "gone.jpg").symlink_to(folder / "deleted-target.jpg")  # a dangling link: stat fails

    report = source_for(folder).sync()

    gone = by_id(report)["gone.jpg"]
    assert (gone.status, gone.path, gone.sha256) == ("failed", None, None)
    assert gone.reason.startswith("cannot read:") and "No such file" in gone.reason
    assert len(report.ok) == 3


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads files whatever their mode")
def test_a_file_without_read_permission_is_failed_with_a_reason(folder: Path) -> None:
    locked = write(folder / "locked.jpg", b"private")
    locked.chmod(0)
    try:
        record = by_id(source_for(folder).sync())["locked.jpg"]
    finally:
        locked.chmod(0o644)
    assert record.status == "failed" and "Permission denied" in record.reason


def test_a_truncated_jpeg_is_listed_ok_because_decoding_is_the_face_stage_s_job(folder: Path) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 120, 90)).save(buffer, "JPEG")
    write(folder / "cut.jpg", buffer.getvalue()[:300])
    with pytest.raises(OSError):
        Image.open(folder / "cut.jpg").load()

    cut = by_id(source_for(folder).sync())["cut.jpg"]

    assert cut.status == "ok" and cut.sha256 == hashlib.sha256(buffer.getvalue()[:300]).hexdigest()


def test_a_missing_folder_is_an_error_rather_than_every_photo_removed(folder: Path, tmp_path: Path) -> None:
    source = source_for(folder)
    source.sync()
    folder.rename(tmp_path / "unplugged")

    with pytest.raises(FileNotFoundError):
        source.sync()
    with pytest.raises(FileNotFoundError):
        source.check_for_changes(None)


def test_an_unreadable_state_file_means_hashing_everything_again_not_a_crash(folder: Path) -> None:
    source = source_for(folder)
    source.sync()
    source.state_path.write_text("{ not json")

    report = source.sync()

    assert len(source.last_hashed) == 3
    assert any("unreadable" in note for note in report.notes)


def test_folders_sharing_a_state_dir_keep_separate_states(folder: Path, tmp_path: Path) -> None:
    other = tmp_path / "Other"
    write(other / "x.jpg", b"x")
    source_for(folder).sync()
    LocalFolderSource(other, folder.parent / "state").sync()

    assert source_for(folder).sync().removed == ()


def test_the_first_poll_is_a_change_and_a_repeated_poll_is_not(folder: Path) -> None:
    source = source_for(folder)
    first = source.check_for_changes(None)
    again = source.check_for_changes(first.cursor)

    assert first.changed and first.cursor
    assert not again.changed and again.cursor == first.cursor
    assert "3 image files" in again.summary


def save_anew(path: Path, data: bytes) -> None:
    """How photo editors save: a new file renamed over the old one."""
    temporary = path.with_name(path.name + ".part")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def test_a_poll_notices_one_photo_added_removed_renamed_replaced_or_two_swapping_names(folder: Path) -> None:
    write(folder / "trip" / "e.png", b"photo e")
    source = source_for(folder)
    cursors = [source.check_for_changes(None).cursor]

    def poll_after(change: Callable[[], object]) -> None:
        change()
        check = source.check_for_changes(cursors[-1])
        assert check.changed, change
        cursors.append(check.cursor)

    poll_after(lambda: write(folder / "new.jpg", b"new"))
    poll_after(lambda: (folder / "new.jpg").unlink())
    poll_after(lambda: (folder / "a.jpg").rename(folder / "renamed.jpg"))
    poll_after(lambda: save_anew(folder / "trip" / "b.PNG", b"photo b, edited"))  # same name, new inode
    poll_after(lambda: swap_names(folder / "trip" / "b.PNG", folder / "trip" / "e.png"))
    (folder / "notes.md").write_bytes(b"not a photo")  # the folder's mtime moves, its photos do not
    again = source.check_for_changes(cursors[-1])

    assert not again.changed and again.cursor == cursors[-1]
    assert cursors[2] == cursors[0], "the same files (names and inodes) give the same cursor"


def swap_names(one: Path, other: Path) -> None:
    """Two photos of a folder exchange names: the same names and inodes, paired the other way."""
    parked = one.with_name("parked.tmp")
    one.rename(parked)
    other.rename(one)
    parked.rename(other)


def test_the_folder_digest_depends_on_the_files_not_on_the_listing_order() -> None:
    names = [f"IMG_{number}.jpg".encode() for number in range(50)]
    inodes = list(range(1000, 1050))

    assert _folder_digest(names, inodes) == _folder_digest(names[::-1], inodes[::-1])
    assert _folder_digest(names, inodes) != _folder_digest(names, inodes[1:] + inodes[:1])


def test_a_poll_counts_the_photos_a_sync_takes_whatever_their_names(folder: Path) -> None:
    for name in ("Été.JPEG", "scan.\u212a", "archive.tar.gz", "photo.jpg.txt", "album.jpg/inside.png"):
        write(folder / name, b"a file")
    # KELVIN SIGN lowers to "k" (not so as bytes); a two-dot type is never a file's type
    source = source_for(folder, suffixes="jpg,jpeg,png,webp,k,tar.gz")
    taken = ok_ids(source.sync())
    check = source.check_for_changes(None)
    write(Path(os.fsdecode(bytes(folder) + b"/caf\xe9.JPG")), b"a name that is not UTF-8")
    after = source.check_for_changes(check.cursor)

    assert f"{len(taken)} image files" in check.summary and len(taken) == 6
    assert after.changed and f"{len(taken) + 1} image files" in after.summary


def test_a_file_rewritten_in_place_is_found_by_the_next_sync_not_by_the_folder_level_poll(folder: Path) -> None:
    """The poll reads folders (mtime, names, inodes), never each file's stat: the price of ~0.7 s per million files."""
    source = source_for(folder)
    source.sync()
    cursor = source.check_for_changes(None).cursor
    write(folder / "trip" / "b.PNG", b"photo b, edited", 1_700_009_000)  # same inode, folder untouched

    assert not source.check_for_changes(cursor).changed
    assert source.sync().changed == ("trip/b.PNG",)


def test_a_poll_relists_only_the_folders_whose_mtime_changed(folder: Path) -> None:
    source = source_for(folder)
    past = 1_600_000_000 * 10**9  # folders last modified long ago: their mtimes can be trusted
    for sub in ("", "trip", "trip/day2"):
        os.utime(folder / sub, ns=(past, past))
    cursor = source.check_for_changes(None).cursor
    write(folder / "trip" / "day2" / "d.jpg", b"photo d")  # only day2's mtime moves
    os.utime(folder / "trip" / "day2", ns=(past + 1, past + 1))
    os.utime(folder / "trip", ns=(past, past))
    (folder / "trip" / "stray.jpg").write_bytes(b"invisible")  # trip's mtime moves, then is put back
    os.utime(folder / "trip", ns=(past, past))

    after = source.check_for_changes(cursor)
    assert after.changed and "4 image files" in after.summary, "trip/ was not re-listed, day2/ was"


def test_a_poll_looks_only_at_file_stats_and_leaves_the_sync_state_alone(folder: Path) -> None:
    source = source_for(folder)
    cursor = source.check_for_changes(None).cursor
    write(folder / "a.jpg", b"PHOTO A", 1_700_000_000)  # same size and mtime: invisible to a stat-only poll

    assert not source.check_for_changes(cursor).changed
    assert source.sync().added == ("a.jpg", "trip/b.PNG", "trip/day2/c.webp")  # polls saved nothing


def test_a_file_name_that_is_not_utf8_is_skipped_with_a_reason_and_the_sync_goes_on(folder: Path) -> None:
    write(Path(os.fsdecode(bytes(folder) + b"/caf\xe9.jpg")), b"a name written by an old Latin-1 system")

    report = source_for(folder).sync()

    (odd,) = [p for p in report.photos if p.source_id.startswith("caf")]
    assert (odd.status, odd.path, odd.sha256) == ("skipped", None, None)
    assert odd.reason == "file name is not valid UTF-8: rename the file to import it"
    assert odd.source_id == odd.name == "caf\ufffd.jpg"  # shown with a replacement character, stored as text
    assert len(report.ok) == 3 and source_for(folder).sync().added == ()  # the next sync finds it again, unchanged
