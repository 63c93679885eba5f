"""The demo graph with Dagster on PostgreSQL (deploy/dagster-postgres.yaml) and MLflow on a tracking
server (PostgreSQL backend store, separate artifact root): same assets, lineage, registry; a second
run with nothing new registers no new model version.
"""

from __future__ import annotations

import urllib.request

import dagster as dg
import pytest
from mlflow import MlflowClient

from facecraft_pipeline.definitions import build_assets
from facecraft_pipeline.mlflow_store import TAG_ASSET, TAG_INPUT_PREFIX, TAG_PIPELINE_RUN
from facecraft_pipeline_tests.infra.conftest import model_versions

ASSETS = [a for a in build_assets() if a.partitions_def is None]  # the whole graph a run materializes (not face_shards)

pytestmark = pytest.mark.slow


def metadata(result, asset):
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(asset)]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def test_dagster_storage_is_postgres(deployed):
    instance = deployed.instance
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
    concurrency = instance.get_concurrency_config()
    assert concurrency.pool_config.default_pool_limit == 1  # the accelerator pool: one training step at a time
    assert concurrency.run_queue_config.max_concurrent_runs == 4
    stored = {r.run_id for r in instance.get_runs()}
    assert {deployed.first.run_id, deployed.second.run_id} <= stored
    for asset in ASSETS:
        event = instance.get_latest_materialization_event(asset.key)
        assert event is not None and event.run_id == deployed.second.run_id, asset.key
    # the accelerator pool's steps took and released their slot in PostgreSQL's concurrency tables
    assert "accelerator" in instance.event_log_storage.get_concurrency_keys()


def test_the_whole_graph_materializes_twice_and_the_second_run_reuses_everything(deployed):
    first, second = deployed.first, deployed.second
    assert first.success and second.success
    assert {e.asset_key.to_user_string() for e in first.get_asset_materialization_events()} == {a.key.to_user_string() for a in ASSETS}
    checks = {e.check_name: e.passed for e in first.get_asset_check_evaluations()}
    assert checks["owner_cluster_found"] and checks["dataset_big_enough"] and checks["checkpoint_is_finite"] and checks["lora_weights_load"]
    assert metadata(first, "photos")["ok"] >= 40
    for asset in ("gan_checkpoint", "wgan_gp_checkpoint", "lora_weights", "sample_galleries"):
        assert metadata(second, asset)["reused"] is True, asset


def test_a_second_run_with_nothing_new_registers_no_new_model_version(deployed):
    client = MlflowClient(deployed.tracking_uri)
    before, after = deployed.versions_after_first, model_versions(client)
    assert set(before) == {"facecraft-gan-checkpoint", "facecraft-wgan-gp-checkpoint", "facecraft-lora"}
    assert all(len(v) == 1 for v in before.values()), before
    assert after == before
    assets = {"facecraft-gan-checkpoint": "gan_checkpoint", "facecraft-wgan-gp-checkpoint": "wgan_gp_checkpoint", "facecraft-lora": "lora_weights"}
    for name, asset in assets.items():
        assert metadata(deployed.second, asset)["model_version"] == metadata(deployed.first, asset)["model_version"] == "1"


def test_model_versions_live_in_the_servers_artifact_root_not_on_this_machines_paths(deployed):
    client = MlflowClient(deployed.tracking_uri)
    experiment = client.get_experiment_by_name(deployed.experiment)
    assert experiment.artifact_location.startswith("mlflow-artifacts:")
    lora = client.get_model_version("facecraft-lora", "1")
    assert lora.source == f"runs:/{lora.run_id}/model"
    stored = list(deployed.artifacts.rglob("pytorch_lora_weights.safetensors"))
    assert stored, "LoRA weights uploaded to the server's --artifacts-destination"
    import mlflow.artifacts

    local = mlflow.artifacts.download_artifacts(artifact_uri="models:/facecraft-lora/1", tracking_uri=deployed.tracking_uri)
    from pathlib import Path

    assert (Path(local) / "pytorch_lora_weights.safetensors").read_bytes() == stored[0].read_bytes()
    from facecraft_pipeline.digest import sha256_file

    gan = mlflow.artifacts.download_artifacts(artifact_uri="models:/facecraft-gan-checkpoint/1", tracking_uri=deployed.tracking_uri)
    checkpoint = deployed.first.output_for_node("gan_checkpoint").artifact("checkpoint")
    assert [sha256_file(p) for p in Path(gan).iterdir() if p.suffix == ".pt"] == [sha256_file(checkpoint)]


def test_lineage_tags_and_inputs_are_recorded_on_the_server(deployed):
    client = MlflowClient(deployed.tracking_uri)
    experiment = client.get_experiment_by_name(deployed.experiment)
    runs = client.search_runs([experiment.experiment_id], f"tags.`{TAG_PIPELINE_RUN}` = '{deployed.first.run_id}'")
    by_asset = {r.data.tags.get(TAG_ASSET): r for r in runs if TAG_ASSET in r.data.tags}
    assert set(by_asset) == {a.key.to_user_string() for a in ASSETS}
    lora = by_asset["lora_weights"]
    assert lora.data.tags[TAG_INPUT_PREFIX + "curated_dataset"] == metadata(deployed.first, "curated_dataset")["data_version"]
    assert lora.data.tags["dagster.run_id"] == deployed.first.run_id
    assert client.get_run(by_asset["curated_dataset"].info.run_id).inputs.dataset_inputs


def test_no_face_image_reaches_the_tracking_server_by_default(deployed):
    images = [p for p in deployed.artifacts.rglob("*") if p.suffix.lower() in {".png", ".jpg", ".jpeg", ".gif", ".webp", ".heic"}]
    assert images == []
    assert list(deployed.artifacts.rglob("manifest.json")), "non-image artifacts still go to the server"


def test_dagster_metadata_links_to_the_mlflow_run_page(deployed):
    meta = metadata(deployed.first, "lora_weights")
    link = meta["mlflow_run"]
    assert link.startswith(deployed.tracking_uri + "/#/experiments/") and link.endswith(meta["mlflow_run_id"])
    with urllib.request.urlopen(link.split("#")[0], timeout=10) as page:
        assert page.status == 200


def test_the_lineage_command_walks_from_a_registered_model_back_to_photo_ids(deployed, capsys, monkeypatch):
    from facecraft_pipeline import cli

    monkeypatch.setenv("MLFLOW_TRACKING_URI", deployed.tracking_uri)
    monkeypatch.setenv("FACECRAFT_MLFLOW_EXPERIMENT", deployed.experiment)
    monkeypatch.setenv("FACECRAFT_HOME", str(deployed.home))
    client = MlflowClient(deployed.tracking_uri)
    client.set_registered_model_alias("facecraft-lora", "under-test", "1")
    assert cli.main(["lineage", "models:/facecraft-lora@under-test"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert [line.split()[0] for line in lines[:5]] == ["lora_weights", "curated_dataset", "face_crops", "identity_clusters", "photos"]
    assert deployed.first.run_id in lines[0] and f"{deployed.tracking_uri}/#/experiments/" in lines[0]
    assert lines[-1].startswith("photos (") and "FAKE!" in lines[-1]  # OneDrive item ids of the fake Graph
    weights = deployed.first.output_for_node("lora_weights").artifact("weights")
    assert cli.main(["trace", str(weights)]) == 0
    assert capsys.readouterr().out.splitlines()[0].split()[0] == "lora_weights"
    assert cli.main(["lineage", "models:/facecraft-lora@no-such-alias"]) == 1
