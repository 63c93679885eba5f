"""Fixtures for the OneDrive tests: a running fake Graph and sources pointed at it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken

from facecraft_pipeline.sources.onedrive import OneDriveSource
from facecraft_pipeline.sources.onedrive_settings import OneDriveSettings
from facecraft_pipeline_tests.onedrive.fake_graph import FakeGraph


class StaticToken:
    """Stands in for an azure-identity credential: hands out one fixed bearer token."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.calls = 0

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.calls += 1
        return AccessToken(self.token, int(time.time()) + 3600)


@pytest.fixture
def fake() -> Iterator[FakeGraph]:
    """A fake drive with a /Pictures folder (also the special "photos" folder); 3 items per delta page."""
    with FakeGraph(page_size=3) as server:
        server.add_folder("Pictures", special="photos")
        yield server


@pytest.fixture
def pictures(fake: FakeGraph) -> str:
    """Item id of the /Pictures folder."""
    return fake.special["photos"]


SourceFactory = Callable[..., OneDriveSource]


@pytest.fixture
def make_source(fake: FakeGraph, tmp_path: Path) -> SourceFactory:
    """`make_source(**settings)`: a source on the fake; the same folders every call, like a re-run."""

    def make(**overrides: Any) -> OneDriveSource:
        settings = OneDriveSettings(client_id="test-client", graph_base_url=fake.base_url, **overrides)
        return OneDriveSource(settings, tmp_path / "mirror", tmp_path / "state", credential=StaticToken(fake.token))

    return make
