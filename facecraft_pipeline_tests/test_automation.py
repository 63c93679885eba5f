"""Automation: new photos trigger one ingest run; training follows only a changed dataset version."""

from __future__ import annotations

import shutil

import dagster as dg
import pytest

from facecraft_pipeline.automation import new_photos_sensor
from facecraft_pipeline.definitions import defs
from facecraft_pipeline.resources import HomeResource, LocalFolderResource

TRAINING = {"gan_checkpoint", "wgan_gp_checkpoint", "lora_weights"}


@pytest.fixture
def folder(tmp_path):
    from matplotlib import cbook

    pictures = tmp_path / "Pictures"
    pictures.mkdir()
    shutil.copy(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False), pictures / "a.jpg")
    return pictures


def poll(folder, home, cursor):
    context = dg.build_sensor_context(
        cursor=cursor,
        resources={"home": HomeResource(root=str(home)), "photo_source": LocalFolderResource(folder=str(folder))},
    )
    result = new_photos_sensor(context)
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
