"""The Dagster sensor on a OneDrive source: one run per batch of new photos, none when quiet."""

from __future__ import annotations

import dagster as dg

from facecraft_pipeline.automation import AutomationSettings, new_photos_sensor
from facecraft_pipeline.home import Home
from facecraft_pipeline.resources import HomeResource, OneDriveResource
from facecraft_pipeline.sources.onedrive import OneDriveSource
from facecraft_pipeline_tests.onedrive.conftest import StaticToken
from facecraft_pipeline_tests.onedrive.fake_graph import FakeGraph


class SignedInOneDrive(OneDriveResource):
    """The OneDrive source as configured in Dagster, already signed in (no Microsoft login here)."""

    token: str = ""

    def build(self, home: Home) -> OneDriveSource:
        return OneDriveSource(self.onedrive_settings(), home.dir("photos", "onedrive"), self.state_dir(home), StaticToken(self.token))


def test_the_sensor_requests_exactly_one_run_for_a_batch_of_new_photos(fake: FakeGraph, pictures: str, tmp_path) -> None:
    fake.add_file("a.jpg", pictures, b"a" * 10)
    resources = {
        "home": HomeResource(root=str(tmp_path)),
        "photo_source": SignedInOneDrive(
            settings={"folder": "/Pictures", "client_id": "c", "graph_base_url": fake.base_url}, token=fake.token
        ),
    }

    def tick(cursor):
        context = dg.build_sensor_context(cursor=cursor, resources=resources)
        return new_photos_sensor(AutomationSettings())(context), context.cursor

    first, cursor = tick(None)
    quiet, cursor = tick(cursor)
    for name in ("b.jpg", "c.jpg", "d.heic"):
        fake.add_file(name, pictures, name.encode() * 5)
    batch, cursor = tick(cursor)
    after, cursor = tick(cursor)

    assert isinstance(first, dg.RunRequest)
    assert isinstance(quiet, dg.SkipReason)
    assert isinstance(batch, dg.RunRequest)
    assert isinstance(after, dg.SkipReason)
    assert fake.downloads() == 0, "polling never downloads"
