"""A sync that dies half-way resumes without downloading again what it had finished."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken

from facecraft_pipeline.sources.onedrive import OneDriveSource
from facecraft_pipeline.sources.onedrive_settings import OneDriveSettings
from facecraft_pipeline_tests.onedrive.conftest import SourceFactory
from facecraft_pipeline_tests.onedrive.fake_graph import FakeGraph


class CrashingToken:
    """A credential whose process 'dies' (raises) at its n-th use: every Graph request asks for a token."""

    def __init__(self, token: str, crash_at: int) -> None:
        self.token, self.crash_at, self.calls = token, crash_at, 0

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.calls += 1
        if self.calls >= self.crash_at:
            raise RuntimeError("simulated crash")
        return AccessToken(self.token, int(time.time()) + 3600)


def test_interrupted_sync_resumes_without_refetching_finished_photos(
        fake: FakeGraph, pictures: str, make_source: SourceFactory, tmp_path: Path) -> None:
    photos = [fake.add_file(f"{i}.jpg", pictures, bytes([i]) * 50_000) for i in range(8)]
    # Calls: drive, folder, 3 delta pages, then one content request per photo (one at a time).
    settings = OneDriveSettings(graph_base_url=fake.base_url, max_concurrency=1)
    doomed = OneDriveSource(settings, tmp_path / "mirror", tmp_path / "state", CrashingToken(fake.token, 9))
    with pytest.raises(RuntimeError, match="simulated crash"):
        doomed.sync()
    finished = sorted(p.name for p in (tmp_path / "mirror").iterdir())
    assert len(finished) == 3 and fake.downloads() == 3

    report = make_source(max_concurrency=1).sync()

    assert len(report.ok) == 8
    assert all(fake.downloads(item) == 1 for item in photos), "nothing downloaded twice"
    assert {p.path.name for p in report.ok} >= set(finished)
    assert set(report.added) == set(photos), "the crashed run reported nothing, so all 8 are new"


def test_photo_whose_file_landed_but_was_not_yet_recorded_is_adopted_by_its_hash(
        fake: FakeGraph, pictures: str, make_source: SourceFactory) -> None:
    photo = fake.add_file("a.jpg", pictures, b"a" * 1000)
    first = make_source().sync()
    (first.photos[0].path.parent.parent / "state" / "onedrive_state.json").unlink()  # state lost, file kept

    again = make_source().sync()

    assert again.photos[0].path == first.photos[0].path and fake.downloads(photo) == 1


def test_unreadable_state_means_a_full_listing_not_a_crash(
        fake: FakeGraph, pictures: str, make_source: SourceFactory, tmp_path: Path) -> None:
    photo = fake.add_file("a.jpg", pictures, b"a" * 1000)
    make_source().sync()
    (tmp_path / "state" / "onedrive_state.json").write_text("{not json")

    report = make_source().sync()

    assert [p.source_id for p in report.ok] == [photo] and fake.downloads(photo) == 1
    assert "unreadable" in report.notes[0]
