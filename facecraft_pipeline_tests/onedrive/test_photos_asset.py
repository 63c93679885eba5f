"""The `photos` asset on a OneDrive source: unverified photos are counted in its metadata."""

from __future__ import annotations

import dagster as dg

from facecraft_pipeline.assets.photos import photos as recipe
from facecraft_pipeline.resources import HomeResource, MlflowResource
from facecraft_pipeline_tests.onedrive.fake_graph import FakeGraph
from facecraft_pipeline_tests.onedrive.test_sensor import SignedInOneDrive


def test_photos_metadata_counts_unverified_photos(fake: FakeGraph, pictures: str, tmp_path) -> None:
    fake.add_file("fresh.jpg", pictures, b"f" * 500, hash_kinds=())
    fake.add_file("hashed.jpg", pictures, b"h" * 500)
    resources = {
        "home": HomeResource(root=str(tmp_path / "home")),
        "mlflow": MlflowResource(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", experiment="photos", log_images=False),
        "photo_source": SignedInOneDrive(settings={"client_id": "c", "graph_base_url": fake.base_url}, token=fake.token),
    }

    result = dg.materialize([recipe.build("demo", {})], resources=resources, instance=dg.DagsterInstance.ephemeral())

    metadata = result.asset_materializations_for_node("photos")[0].metadata
    assert (metadata["ok"].value, metadata["unverified"].value) == (2, 1)
    assert "1 unverified" in metadata["summary"].value
