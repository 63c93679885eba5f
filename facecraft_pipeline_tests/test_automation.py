"""Automation: new photos trigger one ingest run; training follows only a changed dataset version."""

from __future__ import annotations

import shutil

import dagster as dg
import pytest

from facecraft_pipeline.automation import AutomationSettings, new_photos_sensor
from facecraft_pipeline.definitions import defs
from facecraft_pipeline.resources import HomeResource, LocalFolderResource, MlflowResource

TRAINING = {"gan_checkpoint", "wgan_gp_checkpoint", "lora_weights"}


@pytest.fixture
def folder(tmp_path):
    from matplotlib import cbook

    pictures = tmp_path / "Pictures"
    pictures.mkdir()
    shutil.copy(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False), pictures / "a.jpg")
    return pictures


def poll(folder, home, cursor, instance=None):
    context = dg.build_sensor_context(
        cursor=cursor,
        instance=instance,
        resources={"home": HomeResource(root=str(home)), "photo_source": LocalFolderResource(folder=str(folder))},
    )
    result = new_photos_sensor(AutomationSettings())(context)
    return result, context.cursor


def test_the_sensor_asks_for_one_run_per_batch_of_new_photos_and_none_when_nothing_changed(folder, tmp_path):
    home = tmp_path / "home"
    first, cursor = poll(folder, home, None)
    assert isinstance(first, dg.RunRequest)

    unchanged, cursor_again = poll(folder, home, cursor)
    assert isinstance(unchanged, dg.SkipReason) and cursor_again == cursor

    for name in ("b.jpg", "c.jpg", "d.jpg"):
        shutil.copy(folder / "a.jpg", folder / name)
    batch, cursor = poll(folder, home, cursor)
    assert isinstance(batch, dg.RunRequest)
    assert isinstance(poll(folder, home, cursor)[0], dg.SkipReason)

    (folder / "b.jpg").unlink()
    removed, cursor = poll(folder, home, cursor)
    assert isinstance(removed, dg.RunRequest)

    shutil.copy(folder / "a.jpg", folder / "b.jpg")  # restored: the library is as it was two polls ago
    restored, _ = poll(folder, home, cursor)
    assert isinstance(restored, dg.RunRequest) and restored.run_key is None


def ingest_photos(folder, home, instance):
    """Materialize `photos` from the folder, as `make demo` or the UI would, outside the sensor."""
    from facecraft_pipeline.assets.photos import photos as recipe

    resources = {
        "home": HomeResource(root=str(home)),
        "photo_source": LocalFolderResource(folder=str(folder)),
        "mlflow": MlflowResource(tracking_uri=f"sqlite:///{home / 'mlflow.db'}", experiment="automation"),
    }
    assert dg.materialize([recipe.build("demo", {})], resources=resources, instance=instance).success


def test_a_fresh_sensor_starts_from_what_is_already_ingested(folder, tmp_path):
    home = tmp_path / "home"
    with dg.instance_for_test() as instance:
        first, _ = poll(folder, home, None, instance)
        assert isinstance(first, dg.RunRequest)  # nothing ingested yet: one run

        ingest_photos(folder, home, instance)
        fresh, cursor = poll(folder, home, None, instance)  # a new sensor (empty cursor) on the same instance
        assert isinstance(fresh, dg.SkipReason), fresh
        assert isinstance(poll(folder, home, cursor, instance)[0], dg.SkipReason)

        shutil.copy(folder / "a.jpg", folder / "new.jpg")
        added, cursor = poll(folder, home, cursor, instance)
        assert isinstance(added, dg.RunRequest)
        assert isinstance(poll(folder, home, cursor, instance)[0], dg.SkipReason)

        (folder / "later.jpg").write_bytes((folder / "a.jpg").read_bytes())
        ingest_photos(folder, home, instance)  # ingested by hand before the sensor saw it: no second run
        assert isinstance(poll(folder, home, cursor, instance)[0], dg.SkipReason)


def test_the_poll_interval_is_a_documented_setting():
    from facecraft_pipeline.definitions import build_definitions
    from facecraft_pipeline.settings import help_text

    assert AutomationSettings().poll_seconds == 300 and "FACECRAFT_POLL_SECONDS" in help_text(AutomationSettings, "poll_seconds")
    assert AutomationSettings.from_env({"FACECRAFT_POLL_SECONDS": "45"}).poll_seconds == 45
    with pytest.raises(ValueError, match="poll_seconds"):
        AutomationSettings.from_env({"FACECRAFT_POLL_SECONDS": "1"})
    sensor = build_definitions("demo", {"FACECRAFT_POLL_SECONDS": "45"}).resolve_sensor_def("new_photos_sensor")
    assert sensor.minimum_interval_seconds == 45 and "every 45 s" in sensor.description


def report(instance, asset, version):
    instance.report_runless_asset_event(dg.AssetMaterialization(asset, tags={"dagster/data_version": version}))


def requested(result) -> set[str]:
    return {asset for asset in TRAINING | {"sample_galleries"} if result.get_num_requested(dg.AssetKey(asset))}


def test_training_is_requested_only_when_the_curated_dataset_version_changes():
    with dg.instance_for_test() as instance:
        cursor = dg.evaluate_automation_conditions(defs=defs, instance=instance).cursor
        for upstream in ("photos", "face_crops", "identity_clusters"):
            report(instance, upstream, "x")

        report(instance, "curated_dataset", "v1")
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
        assert requested(result) >= TRAINING
        for asset in TRAINING:
            report(instance, asset, f"{asset}-v1")
        cursor = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor).cursor

        report(instance, "curated_dataset", "v1")  # re-materialized, same photos, same digest
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
        assert not requested(result) & TRAINING

        report(instance, "curated_dataset", "v2")  # new photos made a new dataset
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
        assert requested(result) >= TRAINING


def test_galleries_follow_model_and_owner_versions_not_every_re_materialization():
    with dg.instance_for_test() as instance:
        cursor = dg.evaluate_automation_conditions(defs=defs, instance=instance).cursor
        for upstream in ("photos", "face_crops", "identity_clusters", "curated_dataset"):
            report(instance, upstream, "v1")
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
        assert requested(result) == TRAINING | {"sample_galleries"}  # one run: the models, then their galleries
        for asset in TRAINING:
            report(instance, asset, f"{asset}-v1")
        report(instance, "sample_galleries", "g1")
        cursor = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor).cursor

        for upstream in ("photos", "face_crops", "identity_clusters", "curated_dataset"):  # an ingest that changed nothing
            report(instance, upstream, "v1")
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
        assert not requested(result)
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
        assert not requested(result)

        report(instance, "identity_clusters", "v2")  # the owner's identity changed, the dataset did not
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
        assert requested(result) == {"sample_galleries"}
        report(instance, "sample_galleries", "g2")
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
        assert not requested(result)

        report(instance, "lora_weights", "lora_weights-v2")  # one model changed (re-trained by hand)
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
        assert requested(result) == {"sample_galleries"}
