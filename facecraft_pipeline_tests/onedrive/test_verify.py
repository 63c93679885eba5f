"""What the mirror trusts: bytes without a hash are kept as unverified and re-checked; damaged files are noticed."""

from __future__ import annotations

import os

from facecraft_pipeline.sources.manifest import manifest_from_report
from facecraft_pipeline_tests.onedrive.conftest import SourceFactory
from facecraft_pipeline_tests.onedrive.fake_graph import FakeGraph


def test_bytes_graph_gave_no_hash_for_are_kept_unverified_counted_and_rechecked_when_a_hash_appears(
        fake: FakeGraph, pictures: str, make_source: SourceFactory) -> None:
    photo = fake.add_file("new.jpg", pictures, b"n" * 4000, hash_kinds=())  # just uploaded: no hash yet
    checked = fake.add_file("old.jpg", pictures, b"o" * 4000)
    fake.fail_download(photo, ("corrupt",))  # right length, one wrong byte: nothing can tell

    first = make_source().sync()

    records = {p.source_id: p for p in first.photos}
    assert records[photo].status == "ok" and records[photo].verified is False
    assert records[checked].verified is True
    assert manifest_from_report(first).counts()["unverified"] == 1
    assert any("unverified" in note for note in first.notes)
    assert records[photo].path.read_bytes() != fake.content_of(photo), "the fault really corrupted it"

    fake.set_hashes(photo, ("quickXorHash",))  # Graph has computed the hash since
    second = make_source().sync()

    again = {p.source_id: p for p in second.photos}[photo]
    assert again.status == "ok" and again.verified is True
    assert again.path.read_bytes() == fake.content_of(photo), "the wrong bytes were fetched again"
    assert fake.downloads(photo) == 2 and fake.downloads(checked) == 1


def test_unverified_photo_stays_while_its_ctag_and_size_stay_and_is_fetched_when_they_change(
        fake: FakeGraph, pictures: str, make_source: SourceFactory) -> None:
    photo = fake.add_file("a.jpg", pictures, b"a" * 1000, hash_kinds=())
    make_source().sync()

    quiet = make_source().sync()
    assert quiet.photos[0].verified is False and fake.downloads(photo) == 1, "no hash, same cTag: not fetched again"
    assert len(fake.graph_requests(f"/items/{photo}")) >= 2, "but asked about again"

    fake.update_file(photo, b"b" * 1000)  # same size, new cTag
    changed = make_source().sync()
    assert changed.photos[0].path.read_bytes() == b"b" * 1000 and fake.downloads(photo) == 2


def test_a_mirror_file_damaged_in_place_with_its_size_unchanged_is_fetched_again(
        fake: FakeGraph, pictures: str, make_source: SourceFactory) -> None:
    photo = fake.add_file("a.jpg", pictures, b"a" * 3000)
    path = make_source().sync().photos[0].path
    with open(path, "r+b") as handle:  # bit rot, a bad editor save: same size, other bytes
        handle.seek(100)
        handle.write(b"X")

    report = make_source().sync()

    assert report.photos[0].path.read_bytes() == fake.content_of(photo)
    assert fake.downloads(photo) == 2
    assert any("no longer matched" in note for note in report.notes)


def test_a_mirror_file_only_touched_is_hashed_once_and_not_fetched_again(
        fake: FakeGraph, pictures: str, make_source: SourceFactory) -> None:
    photo = fake.add_file("a.jpg", pictures, b"a" * 3000)
    path = make_source().sync().photos[0].path
    os.utime(path, ns=(1_600_000_000 * 10**9, 1_600_000_000 * 10**9))  # e.g. a backup restore

    make_source().sync()
    make_source().sync()

    assert fake.downloads(photo) == 1
