"""check_for_changes: a cheap poll with its own delta link, for sensors."""

from __future__ import annotations

from facecraft_pipeline_tests.onedrive.conftest import SourceFactory
from facecraft_pipeline_tests.onedrive.fake_graph import FakeGraph


def test_first_poll_says_changed_then_unchanged_until_a_photo_arrives(
        fake: FakeGraph, pictures: str, make_source: SourceFactory) -> None:
    fake.add_file("a.jpg", pictures, b"a" * 10)
    source = make_source()

    first = source.check_for_changes(None)
    quiet = source.check_for_changes(first.cursor)
    fake.add_file("notes.txt", pictures, b"not a photo")
    still_quiet = source.check_for_changes(quiet.cursor)
    fake.add_file("b.jpg", pictures, b"b" * 10)
    news = source.check_for_changes(still_quiet.cursor)
    after = source.check_for_changes(news.cursor)

    assert first.changed and first.cursor
    assert not quiet.changed and not still_quiet.changed
    assert news.changed and "1 photo change" in news.summary
    assert not after.changed
    assert fake.downloads() == 0
    assert len(fake.graph_requests("delta(token='latest')")) == 1, "the first poll does not list the folder"


def test_polling_does_not_consume_the_changes_the_next_sync_must_see(
        fake: FakeGraph, pictures: str, make_source: SourceFactory) -> None:
    source = make_source()
    source.sync()
    cursor = source.check_for_changes(None).cursor
    new = fake.add_file("new.jpg", pictures, b"n" * 10)
    assert source.check_for_changes(cursor).changed
    assert source.sync().added == (new,)


def test_deleted_photo_counts_as_a_change(fake: FakeGraph, pictures: str, make_source: SourceFactory) -> None:
    photo = fake.add_file("a.jpg", pictures, b"a" * 10)
    source = make_source()
    cursor = source.check_for_changes(None).cursor
    fake.delete(photo)
    assert source.check_for_changes(cursor).changed


def test_expired_poll_cursor_reports_a_change_and_a_fresh_cursor(
        fake: FakeGraph, pictures: str, make_source: SourceFactory) -> None:
    source = make_source()
    cursor = source.check_for_changes(None).cursor
    fake.expire_delta_tokens()
    expired = source.check_for_changes(cursor)
    assert expired.changed and "expired" in expired.summary
    assert not source.check_for_changes(expired.cursor).changed
