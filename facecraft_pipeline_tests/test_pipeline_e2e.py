"""The whole asset graph materialized in process on the demo profile, twice, like `make demo`.

Training lengths are cut to a few steps (the graph, not the models, is under test here); every
stage still runs its real library: dlib detection and embeddings, scikit-learn clustering,
PyTorch GANs, diffusers + peft LoRA on the tiny offline Stable Diffusion, MLflow on SQLite.
"""

from __future__ import annotations

import dagster as dg
import pytest

from facecraft_pipeline.assets.checks import CHECKS
from facecraft_pipeline.definitions import WHOLE_GRAPH, build_assets, build_resources, defs
from facecraft_pipeline.lineage import trace
from facecraft_pipeline.resources import DemoAlbumResource, HomeResource, LocalFolderResource, MlflowResource

ASSETS = build_assets()  # the demo profile, no environment: what `make demo` builds on a bare machine

SHORT_TRAINING = {
    "ops": {
        "gan_checkpoint": {"config": {"run": {"steps": 12, "checkpoint_every": 6, "sample_every": 6, "log_every": 3}}},
        "wgan_gp_checkpoint": {"config": {"n_critic": 2, "run": {"steps": 6, "checkpoint_every": 3, "sample_every": 3, "log_every": 3}}},
        "lora_weights": {"config": {"run": {"steps": 6, "checkpoint_every": 3, "log_every": 3}}},
        "sample_galleries": {"config": {"samples_per_model": 4, "num_inference_steps": 3}},
    }
}


def materialize(home, instance, source=None, selection=None, config=None):
    res = build_resources({}, HomeResource(root=str(home)))
    res["mlflow"] = MlflowResource(tracking_uri=f"sqlite:///{home / 'mlflow.db'}", experiment="e2e")
    res["photo_source"] = source or DemoAlbumResource()
    config = config or (SHORT_TRAINING if selection is None else {"ops": {}})
    return dg.materialize([*ASSETS, *CHECKS], resources=res, instance=instance, run_config=config, selection=selection or WHOLE_GRAPH)


def metadata(result, asset):
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(asset)]
    return {k: v.value for k, v in event.materialization.metadata.items()}


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    home = tmp_path_factory.mktemp("facecraft-home")
    with dg.instance_for_test() as instance:
        first = materialize(home, instance)
        second = materialize(home, instance)
        longer = {"ops": {"gan_checkpoint": {"config": {"run": {"steps": 18, "checkpoint_every": 6, "sample_every": 6, "log_every": 3}}}}}
        third = materialize(home, instance, selection=["gan_checkpoint"], config=longer)
        yield home, first, second, third


def test_the_whole_graph_materializes_and_every_check_is_evaluated(two_runs):
    _, first, *_ = two_runs
    assert first.success
    materialized = {e.asset_key.to_user_string() for e in first.get_asset_materialization_events()}
    assert materialized == {a.key.to_user_string() for a in ASSETS} - {"face_shards"}  # partitioned: a backfill of its own
    checks = {(e.asset_key.to_user_string(), e.check_name): e.passed for e in first.get_asset_check_evaluations()}
    assert set(checks) == {(c.asset_key.to_user_string(), c.name) for check in CHECKS for c in check.check_specs}
    for key in [("identity_clusters", "owner_cluster_found"), ("identity_clusters", "owner_cluster_not_contaminated"),
                ("curated_dataset", "dataset_big_enough"), ("gan_checkpoint", "checkpoint_is_finite"),
                ("wgan_gp_checkpoint", "checkpoint_is_finite"), ("lora_weights", "lora_weights_load")]:
        assert checks[key], key


def test_raising_steps_in_the_launchpad_continues_the_finished_run_from_its_last_checkpoint(two_runs):
    _, first, _, third = two_runs
    assert third.success
    before, after = metadata(first, "gan_checkpoint"), metadata(third, "gan_checkpoint")
    assert (after["resumed_from"], after["reused"], after["run_key"]) == (12, False, before["run_key"])
    assert after["run_folder"] == before["run_folder"] and "continued from step 12" in after["summary"]
    assert third.output_for_node("gan_checkpoint").steps == 18


def test_no_owner_or_too_small_a_dataset_stops_the_run_before_training():
    blocking = {spec.name: spec.blocking for check in CHECKS for spec in check.check_specs}
    assert blocking["owner_cluster_found"] and blocking["dataset_big_enough"]


def test_the_demo_owner_is_grace_hopper_and_the_other_person_is_kept_apart(two_runs):
    _, first, *_ = two_runs
    identity = first.output_for_node("identity_clusters")
    owner = set(identity.clusters.owner_indices().tolist())
    from facecraft_pipeline.sources.demo_album import DEMO_OWNER, demo_ground_truth

    truth = demo_ground_truth(two_runs[0] / "photos" / "demo-album")
    for index, face in enumerate(identity.faces):
        people = truth[face.photo_id]["people"]
        if people == [DEMO_OWNER]:
            assert index in owner, face.photo_id
        elif DEMO_OWNER not in people:
            assert index not in owner, face.photo_id
    assert metadata(first, "identity_clusters")["owner_rule"] == "reference photos"


def test_bad_and_faceless_photos_are_accounted_for_not_fatal(two_runs):
    _, first, *_ = two_runs
    crops = first.output_for_node("face_crops")
    by_photo = {p.photo_id: p for p in crops.photos}
    assert by_photo["broken_truncated.jpg"].status == "failed"
    faceless = [p for p in crops.photos if p.status == "skipped"]
    assert len(faceless) >= 4 and all(p.reason for p in faceless)
    assert len(crops.photos) == len(first.output_for_node("photos").usable)


def test_the_lora_and_galleries_say_plainly_that_the_base_model_is_tiny_and_random(two_runs):
    _, first, *_ = two_runs
    assert metadata(first, "lora_weights")["base_model_is_tiny_random"] is True
    assert "noise" in metadata(first, "sample_galleries")["summary"]
    gallery = first.output_for_node("sample_galleries")
    assert {m.name for m in gallery.models} == {"gan", "wgan_gp", "lora"}
    assert all(m.grid.is_file() for m in gallery.models) and gallery.report.is_file()


def test_a_second_run_with_no_new_photos_reuses_everything(two_runs):
    _, first, second, _ = two_runs
    assert second.success
    crops = metadata(second, "face_crops")
    assert crops["computed"] == 0 and crops["from_cache"] == crops["photos"]
    for asset in ("gan_checkpoint", "wgan_gp_checkpoint", "lora_weights", "sample_galleries"):
        assert metadata(second, asset)["reused"] is True, asset
    for asset in ("photos", "face_crops", "identity_clusters", "curated_dataset", "gan_checkpoint", "lora_weights", "sample_galleries"):
        assert metadata(first, asset)["data_version"] == metadata(second, asset)["data_version"], asset


def test_mlflow_can_walk_from_the_lora_file_back_to_the_photos(two_runs):
    home, first, *_ = two_runs
    from facecraft_pipeline.home import Home
    from facecraft_pipeline.digest import sha256_file

    lineage = MlflowResource(tracking_uri=f"sqlite:///{home / 'mlflow.db'}", experiment="e2e").lineage(Home(home))
    weights = first.output_for_node("lora_weights").artifact("weights")
    rows = trace(lineage, "lora_weights", artifact_sha256=sha256_file(weights))
    # breadth first; the curated dataset reads face_crops (photo paths) beside identity_clusters
    assert [r["asset"] for r in rows] == ["lora_weights", "curated_dataset", "face_crops", "identity_clusters", "photos"]
    assert rows[-1]["data_version"] == metadata(first, "photos")["data_version"]


def test_a_local_folder_with_a_corrupt_file_and_a_faceless_photo_still_ingests(tmp_path):
    from PIL import Image
    from skimage import data as samples

    from facecraft_pipeline.sources.demo_album import build_demo_album

    album = tmp_path / "album"
    build_demo_album(album)
    folder = tmp_path / "Pictures"
    folder.mkdir()
    for name in sorted(p.name for p in album.glob("IMG_00*"))[:12]:
        (folder / name).write_bytes((album / name).read_bytes())
    Image.fromarray(samples.coffee()).save(folder / "coffee.jpg")
    (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (folder / "empty.jpg").write_bytes(b"")

    with dg.instance_for_test() as instance:
        result = materialize(tmp_path / "home", instance, LocalFolderResource(folder=str(folder)), selection=["photos", "face_crops"])

    assert result.success
    photos = result.output_for_node("photos")
    assert {r.source_id: r.status for r in photos.records}["empty.jpg"] == "skipped"
    outcomes = {p.photo_id: p for p in result.output_for_node("face_crops").photos}
    assert outcomes["corrupt.jpg"].status == "failed" and outcomes["corrupt.jpg"].reason
    assert outcomes["coffee.jpg"].status == "skipped" and outcomes["coffee.jpg"].reason


def test_definitions_load_with_every_asset_check_sensor_and_job():
    repo = defs.get_repository_def()
    assert {k.to_user_string() for k in defs.resolve_all_asset_keys()} == {a.key.to_user_string() for a in ASSETS}
    assert {s.name for s in repo.sensor_defs} == {"new_photos_sensor", "retrain_when_dataset_changes", "failed_run_report"}
    assert {"everything", "ingest_new_photos", "everything_k8s"} <= {j.name for j in repo.get_all_jobs()}


def test_dagster_validates_the_workspace():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    dagster = Path(sys.executable).with_name("dagster")
    done = subprocess.run([str(dagster), "definitions", "validate", "-w", "workspace.yaml"], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "All code locations passed validation" in done.stdout + done.stderr


def test_the_owner_can_be_named_by_photo_ids_in_the_library(tmp_path):
    from facecraft_pipeline.sources.demo_album import DEMO_OTHER, build_demo_album

    album = tmp_path / "album"
    truth = build_demo_album(album)
    other = sorted(name for name, t in truth.items() if t["people"] == [DEMO_OTHER])
    res = build_resources({}, HomeResource(root=str(tmp_path / "home")))
    res["mlflow"] = MlflowResource(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", experiment="ids")
    res["photo_source"] = LocalFolderResource(folder=str(album))
    config = {"ops": {"identity_clusters": {"config": {"owner_reference_photo_ids": f"{other[0]}, {other[1]}"}}}}
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            ASSETS, resources=res, instance=instance, run_config=config, selection=["photos", "face_crops", "identity_clusters"]
        )
    identity = result.output_for_node("identity_clusters")
    owner_photos = {identity.faces[i].photo_id for i in identity.clusters.owner_indices()}
    assert owner_photos and all(DEMO_OTHER in truth[p]["people"] for p in owner_photos)
    assert set(other) <= owner_photos
    assert identity.clusters.owner_rule == "reference photos"
