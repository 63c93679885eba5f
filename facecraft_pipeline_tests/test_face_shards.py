"""A backfill of `face_shards`: two partitions run at once, then the graph gives what one unsharded run gives.

Each partition is its own Dagster run in its own process (`dagster asset materialize --partition K`, as a
backfill launches them; one pod each on Kubernetes), both started at once; `face_crops` then decodes no photo, and its
manifest, crops, clusters and owner equal those of a data root where `face_crops` did everything itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import numpy as np
import pytest

from facecraft_pipeline.assets.checks import CHECKS
from facecraft_pipeline.definitions import build_assets, build_resources

pytestmark = pytest.mark.slow  # four Dagster runs, two of them in processes of their own: ~1 min
ROOT = Path(__file__).resolve().parents[1]


def _library(folder: Path) -> None:
    from skimage import data as samples
    from PIL import Image

    from facecraft_pipeline.sources.demo_album import build_demo_album

    album = folder.parent / "album"
    build_demo_album(album)
    folder.mkdir()
    for name in sorted(p.name for p in album.glob("IMG_00*"))[:14]:
        (folder / name).write_bytes((album / name).read_bytes())
    Image.fromarray(samples.coffee()).save(folder / "coffee.jpg")
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")


def _materialize(env: dict[str, str], instance: dg.DagsterInstance, selection: list[str]) -> dg.ExecuteInProcessResult:
    return dg.materialize([*build_assets(env=env), *CHECKS], resources=build_resources(env), instance=instance,
                          selection=selection)


def _run_window(instance: dg.DagsterInstance, run_id: str) -> tuple[float, float]:
    stats = instance.get_run_stats(run_id)
    return stats.start_time, stats.end_time


def test_two_shards_backfilled_at_once_give_the_faces_clusters_and_owner_of_one_unsharded_run(tmp_path):
    photos = tmp_path / "Pictures"
    _library(photos)
    base = {"FACECRAFT_SOURCE": "local", "FACECRAFT_PHOTOS_DIR": str(photos), "FACECRAFT_FACE_SHARDS": "2", "FACECRAFT_DEVICE": "cpu"}
    sharded = base | {"FACECRAFT_HOME": str(tmp_path / "sharded")}
    whole = base | {"FACECRAFT_HOME": str(tmp_path / "whole")}
    (tmp_path / "instance").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "instance")) as instance:
        assert _materialize(sharded, instance, ["photos"]).success
        dagster = Path(sys.executable).with_name("dagster")
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}  # the data root's own MLflow store
        env |= sharded | {"DAGSTER_HOME": str(tmp_path / "instance")}
        runs = {key: subprocess.Popen([str(dagster), "asset", "materialize", "-m", "facecraft_pipeline.definitions",
                                       "--select", "face_shards", "--partition", key],
                                      env=env, cwd=ROOT,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                for key in ("0", "1")}  # two processes at once, as a backfill launches its runs
        outputs = {key: run.communicate(timeout=600)[0] for key, run in runs.items()}
        assert [runs[key].returncode for key in ("0", "1")] == [0, 0], outputs
        shards = {r.partition_key: r for r in instance.fetch_materializations(dg.AssetKey("face_shards"), limit=10).records}
        assert sorted(shards) == ["0", "1"]
        (start_0, end_0), (start_1, end_1) = (_run_window(instance, shards[key].run_id) for key in ("0", "1"))
        assert start_0 < end_1 and start_1 < end_0  # the two partitions' runs overlapped
        counts = [shards[key].asset_materialization.metadata["photos"].value for key in ("0", "1")]
        assert sum(counts) == 16 and 0 not in counts  # each photo in exactly one shard
        assembled = _materialize(sharded, instance, ["face_crops", "identity_clusters"])
        reference = _materialize(whole, instance, ["photos", "face_crops", "identity_clusters"])

    crops, expected = assembled.output_for_node("face_crops"), reference.output_for_node("face_crops")
    metadata = {k: v.value for k, v in assembled.get_asset_materialization_events()[0].materialization.metadata.items()}
    assert metadata["computed"] == 0 and metadata["from_cache"] == metadata["photos"] == 16  # no photo decoded again
    assert crops.digest == expected.digest
    assert [(p.photo_id, p.status, p.reason) for p in crops.photos] == [(p.photo_id, p.status, p.reason) for p in expected.photos]
    assert [(f.photo_id, f.index, f.crop_sha256) for f in crops.faces] == [(f.photo_id, f.index, f.crop_sha256) for f in expected.faces]
    identity, expected_identity = assembled.output_for_node("identity_clusters"), reference.output_for_node("identity_clusters")
    assert identity.digest == expected_identity.digest
    assert identity.clusters.labels.tolist() == expected_identity.clusters.labels.tolist()
    assert {f.photo_id for f in identity.owner_faces} == {f.photo_id for f in expected_identity.owner_faces} != set()
    np.testing.assert_allclose(identity.embeddings, expected_identity.embeddings, atol=1e-6)
