"""OneDrive sync under faults: throttling, broken bodies, wrong hashes, expired delta tokens."""

from __future__ import annotations

import itertools

import pytest

from facecraft_pipeline_tests.onedrive.conftest import SourceFactory
from facecraft_pipeline_tests.onedrive.fake_graph import FakeGraph, Recorded


def gaps(requests: list[Recorded]) -> list[float]:
    return [later.at - earlier.at for earlier, later in itertools.pairwise(requests)]


def test_download_host_throttling_429_then_503_is_waited_out_as_retry_after_asks(
        fake: FakeGraph, pictures: str, make_source: SourceFactory) -> None:
    photo = fake.add_file("a.jpg", pictures, b"a" * 1000)
    fake.fail_download(photo, ("status", 429, 1), ("status", 503, 1))

    report = make_source(max_attempts=3).sync()

    assert report.photos[0].status == "ok" and report.photos[0].path.read_bytes() == b"a" * 1000
    attempts = fake.download_requests(photo)
    assert len(attempts) == 3
    assert all(gap >= 0.95 for gap in gaps(attempts)), "each retry waits the Retry-After second"


def test_graph_throttling_429_and_503_is_retried_by_the_sdk_after_retry_after(
        fake: FakeGraph, pictures: str, make_source: SourceFactory) -> None:
    fake.add_file("a.jpg", pictures, b"a" * 100)
    fake.throttle_graph("delta", status=429, retry_after=1)
    fake.throttle_graph("item", status=503, retry_after=1)

    report = make_source().sync()

    assert len(report.ok) == 1
    for route in ("/delta", f"/items/{report.photos[0].source_id}"):
        throttled = fake.graph_requests(route)[:2]
        assert len(throttled) == 2 and throttled[0].path == throttled[1].path
        assert gaps(throttled)[0] >= 0.95


@pytest.mark.parametrize("fault", [("truncate",), ("short",), ("drop",), ("corrupt",)],
                         ids=["cut-with-content-length", "cut-without-content-length", "dropped", "wrong-hash"])
def test_a_broken_download_is_retried_and_the_mirror_never_holds_broken_bytes(
        fake: FakeGraph, pictures: str, make_source: SourceFactory, fault: tuple[str]) -> None:
    big = fake.add_file("big.jpg", pictures, size=3_000_000, seed=7)
    fake.fail_download(big, fault)

    report = make_source().sync()

    record = report.photos[0]
    assert record.status == "ok" and record.path.read_bytes() == fake.content_of(big)
    assert len(fake.download_requests(big)) == 2
    assert sorted(p.name for p in record.path.parent.iterdir()) == [record.path.name], "no temp file left"


def test_persistent_hash_mismatch_fails_that_photo_only_and_the_next_sync_retries_it(
        fake: FakeGraph, pictures: str, make_source: SourceFactory) -> None:
    bad = fake.add_file("bad.jpg", pictures, b"b" * 500)
    good = fake.add_file("good.jpg", pictures, b"g" * 500)
    fake.fail_download(bad, ("corrupt",), always=True)

    first = make_source(max_attempts=2).sync()

    records = {p.source_id: p for p in first.photos}
    assert records[good].status == "ok"
    assert records[bad].status == "failed" and records[bad].path is None
    assert "quickXorHash mismatch" in records[bad].reason and "2 attempts" in records[bad].reason
    assert len(fake.download_requests(bad)) == 2
    assert first.added == (good,) and any("could not be downloaded" in note for note in first.notes)
    assert [p.name for p in records[good].path.parent.iterdir()] == [records[good].path.name]

    fake.clear_faults(bad)
    second = make_source(max_attempts=2).sync()

    assert {p.source_id: p.status for p in second.photos} == {bad: "ok", good: "ok"}
    assert second.added == (bad,) and fake.downloads(good) == 1


def test_expired_delta_token_means_full_resync_without_duplicates_and_with_removals(
        fake: FakeGraph, pictures: str, make_source: SourceFactory) -> None:
    keep = [fake.add_file(f"keep{i}.jpg", pictures, bytes([i]) * 100) for i in range(4)]
    gone = fake.add_file("gone.jpg", pictures, b"g" * 100)
    gone_path = {p.source_id: p.path for p in make_source().sync().photos}[gone]
    fake.delete(gone)
    new = fake.add_file("new.jpg", pictures, b"n" * 100)
    fake.expire_delta_tokens()

    report = make_source().sync()

    ids = [p.source_id for p in report.photos]
    assert sorted(ids) == sorted([*keep, new]) and len(ids) == len(set(ids))
    assert report.removed == (gone,) and report.added == (new,) and not gone_path.exists()
    assert any("410" in note for note in report.notes)
    assert all(fake.downloads(item) == 1 for item in keep), "unchanged photos are not fetched again"
    assert len(list(gone_path.parent.iterdir())) == 5
    assert make_source().sync().notes == (), "the fresh delta link works afterwards"
