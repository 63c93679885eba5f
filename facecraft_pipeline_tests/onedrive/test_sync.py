"""OneDrive sync through the real msgraph-sdk against the fake Graph: listing, mirroring, increments."""

from __future__ import annotations

import hashlib

import pytest

from facecraft_pipeline.sources.base import SyncReport
from facecraft_pipeline.sources.onedrive import OneDriveError
from facecraft_pipeline_tests.onedrive.conftest import SourceFactory
from facecraft_pipeline_tests.onedrive.fake_graph import FakeGraph


def by_name(report: SyncReport) -> dict[str, object]:
    return {p.name: p for p in report.photos}


def mirrored_files(report: SyncReport) -> set[str]:
    return {p.path.name for p in report.photos if p.path is not None}


def test_first_sync_mirrors_every_image_lists_other_files_as_skipped_and_skips_oversize(
        fake: FakeGraph, pictures: str, make_source: SourceFactory) -> None:
    trip = fake.add_folder("Trip", pictures)
    cat = fake.add_file("cat.jpg", pictures, b"cat" * 1000)
    beach = fake.add_file("beach.PNG", trip, b"beach" * 700)
    fake.add_file("notes.txt", pictures, b"not a photo")
    fake.add_file("huge.jpg", pictures, size=1_500_000, seed=1)
    fake.add_file("outside.jpg", None, b"not in /Pictures")

    report = make_source(max_file_mb=1.0).sync()

    photos = by_name(report)
    assert set(photos) == {"cat.jpg", "Trip/beach.PNG", "huge.jpg", "notes.txt"}
    notes = photos["notes.txt"]
    assert (notes.status, notes.reason, notes.path) == ("skipped", "unsupported type: .txt", None)
    for name, item_id in (("cat.jpg", cat), ("Trip/beach.PNG", beach)):
        record = photos[name]
        assert record.status == "ok" and record.source_id == item_id
        assert record.path.read_bytes() == fake.content_of(item_id)
        assert record.sha256 == hashlib.sha256(fake.content_of(item_id)).hexdigest()
    huge = photos["huge.jpg"]
    assert huge.status == "skipped" and huge.path is None and "max_file_mb" in huge.reason
    assert set(report.added) == {cat, beach} and report.removed == ()
    assert len(fake.graph_requests("/delta")) >= 2, "the listing is paged (3 items per page)"
    assert fake.downloads() == 2


def test_second_sync_downloads_only_new_and_changed_photos_and_removes_deleted_ones(
        fake: FakeGraph, pictures: str, make_source: SourceFactory) -> None:
    keep = fake.add_file("keep.jpg", pictures, b"keep" * 100)
    edit = fake.add_file("edit.jpg", pictures, b"old" * 100)
    gone = fake.add_file("gone.jpg", pictures, b"gone" * 100)
    first = make_source().sync()
    gone_file = by_name(first)["gone.jpg"].path

    fake.update_file(edit, b"new content" * 50)
    fake.delete(gone)
    new = fake.add_file("new.jpg", pictures, b"new" * 100)
    second = make_source().sync()

    assert (second.added, second.changed, second.removed) == ((new,), (edit,), (gone,))
    assert fake.downloads(keep) == 1 and fake.downloads(edit) == 2 and fake.downloads(new) == 1
    assert by_name(second)["edit.jpg"].path.read_bytes() == b"new content" * 50
    assert not gone_file.exists() and "gone.jpg" not in by_name(second)
    assert len(fake.graph_requests("/delta()")) == 1, "the second sync resumes from the stored delta link"


def test_nothing_changed_means_no_download_and_an_empty_change_set(
        fake: FakeGraph, pictures: str, make_source: SourceFactory) -> None:
    fake.add_file("a.jpg", pictures, b"a" * 100)
    make_source().sync()
    again = make_source().sync()
    assert (again.added, again.changed, again.removed) == ((), (), ())
    assert fake.downloads() == 1 and len(again.ok) == 1


def test_moved_and_renamed_photo_keeps_its_id_and_is_not_downloaded_again(
        fake: FakeGraph, pictures: str, make_source: SourceFactory) -> None:
    photo = fake.add_file("IMG_1.jpg", pictures, b"x" * 500)
    first = make_source().sync()
    album = fake.add_folder("Album", pictures)
    fake.move(photo, album, name="best.jpg")

    second = make_source().sync()

    record = by_name(second)["Album/best.jpg"]
    assert record.source_id == photo and record.path == by_name(first)["IMG_1.jpg"].path and record.path.exists()
    assert fake.downloads(photo) == 1 and second.changed == () and second.removed == ()


def test_photo_moved_out_of_the_synced_folder_is_removed(
        fake: FakeGraph, pictures: str, make_source: SourceFactory) -> None:
    photo = fake.add_file("leaving.jpg", pictures, b"x" * 500)
    path = make_source().sync().photos[0].path
    fake.move(photo, fake.add_folder("Elsewhere"))
    report = make_source().sync()
    assert report.removed == (photo,) and report.photos == () and not path.exists()


def test_deleting_a_folder_removes_the_photos_inside_although_delta_names_only_the_folder(
        fake: FakeGraph, pictures: str, make_source: SourceFactory) -> None:
    old = fake.add_folder("Old", pictures)
    deep = fake.add_folder("Deeper", old)
    inside = [fake.add_file("a.jpg", old, b"a" * 10), fake.add_file("b.jpg", deep, b"b" * 10)]
    survivor = fake.add_file("c.jpg", pictures, b"c" * 10)
    first = make_source().sync()
    fake.delete(old)

    report = make_source().sync()

    assert set(report.removed) == set(inside)
    assert [p.source_id for p in report.photos] == [survivor]
    assert all(not p.path.exists() for p in first.photos if p.source_id in inside)


def test_item_repeated_in_one_delta_last_version_wins(
        fake: FakeGraph, pictures: str, make_source: SourceFactory) -> None:
    photo = fake.add_file("p.jpg", pictures, b"v1" * 100)
    make_source().sync()
    fake.update_file(photo, b"v2" * 100)
    fake.update_file(photo, b"version three" * 10)  # the next delta carries both versions, in order

    report = make_source().sync()

    assert report.changed == (photo,)
    assert report.photos[0].path.read_bytes() == b"version three" * 10
    assert fake.downloads(photo) == 2


def test_non_recursive_sync_takes_only_the_top_level_of_the_folder(
        fake: FakeGraph, pictures: str, make_source: SourceFactory) -> None:
    top = fake.add_file("top.jpg", pictures, b"t" * 10)
    fake.add_file("nested.jpg", fake.add_folder("Sub", pictures), b"n" * 10)
    report = make_source(recursive=False).sync()
    assert [p.source_id for p in report.photos] == [top]


def test_special_photos_folder_and_whole_drive_scopes(
        fake: FakeGraph, pictures: str, make_source: SourceFactory) -> None:
    in_pictures = fake.add_file("a.jpg", pictures, b"a" * 10)
    at_root = fake.add_file("b.jpg", None, b"b" * 10)
    assert [p.source_id for p in make_source(folder="special:photos").sync().photos] == [in_pictures]
    whole = make_source(folder="/").sync()
    assert {p.name: p.source_id for p in whole.photos} == {"Pictures/a.jpg": in_pictures, "b.jpg": at_root}
    assert whole.notes and "changed" in whole.notes[0], "switching folders lists everything again"


def test_sha1_only_files_are_verified_too(fake: FakeGraph, pictures: str, make_source: SourceFactory) -> None:
    photo = fake.add_file("business.jpg", pictures, b"s" * 300, hash_kinds=("sha1Hash",))
    fake.fail_download(photo, ("corrupt",))
    report = make_source().sync()
    assert report.photos[0].status == "ok" and len(fake.download_requests(photo)) == 2


def test_downloads_never_carry_the_graph_token_and_stay_within_max_concurrency(
        fake: FakeGraph, pictures: str, make_source: SourceFactory) -> None:
    for i in range(12):
        fake.add_file(f"{i:02d}.jpg", pictures, size=200_000, seed=i)
    report = make_source(max_concurrency=2).sync()
    assert len(report.ok) == 12
    assert fake.auth_leaks == []
    assert all("authorization" not in r.headers for r in fake.download_requests())
    assert all(r.headers.get("authorization") == f"Bearer {fake.token}" for r in fake.graph_requests())
    assert 1 <= fake.max_in_flight <= 2


def test_mirror_file_deleted_by_hand_is_fetched_again(
        fake: FakeGraph, pictures: str, make_source: SourceFactory) -> None:
    photo = fake.add_file("a.jpg", pictures, b"a" * 100)
    make_source().sync().photos[0].path.unlink()
    report = make_source().sync()
    assert report.photos[0].path.read_bytes() == b"a" * 100 and fake.downloads(photo) == 2


def test_a_folder_that_does_not_exist_is_named_in_the_error(fake: FakeGraph, make_source: SourceFactory) -> None:
    with pytest.raises(OneDriveError, match="no folder '/Fotos'"):
        make_source(folder="/Fotos").sync()


def test_other_files_are_listed_but_never_downloaded_nor_counted_as_photo_changes(
        fake: FakeGraph, pictures: str, make_source: SourceFactory) -> None:
    clip = fake.add_file("clip.mov", pictures, b"video" * 100)
    first = make_source().sync()
    fake.delete(clip)
    second = make_source().sync()

    assert [(p.name, p.status) for p in first.photos] == [("clip.mov", "skipped")]
    assert first.added == () and second.removed == () and fake.downloads() == 0
