"""Re-training without anyone pressing a button.

1. `new_photos_sensor` polls the photo source cheaply (OneDrive delta API / folder listing) and,
   when something was added or removed, requests one run of the ingest assets (photos through
   curated_dataset).
2. The training assets carry `RETRAIN_WHEN_DATASET_CHANGES`: they are requested only when the
   curated dataset's *data version* changed (same photos -> same digest -> no re-training), and
   `sample_galleries` follows eagerly. `retrain_sensor` evaluates those conditions.
Both sensors are visible and switchable in the Dagster UI (Automation tab); they start stopped
unless FACECRAFT_AUTOMATION=on.
"""

from __future__ import annotations

import dagster as dg

from facecraft_pipeline.env import env_bool, env_int
from facecraft_pipeline.resources import HomeResource, PhotoSourceResource

INGEST = dg.AssetSelection.assets("photos", "face_crops", "identity_clusters", "curated_dataset")
TRAINING = dg.AssetSelection.assets("gan_checkpoint", "wgan_gp_checkpoint", "lora_weights", "sample_galleries")

RETRAIN_WHEN_DATASET_CHANGES = (
    dg.AutomationCondition.any_deps_match(dg.AutomationCondition.data_version_changed()).since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("curated dataset's data version changed")


def _default_status() -> dg.DefaultSensorStatus:
    on = env_bool("FACECRAFT_AUTOMATION", False)
    return dg.DefaultSensorStatus.RUNNING if on else dg.DefaultSensorStatus.STOPPED


ingest_job = dg.define_asset_job(
    "ingest_new_photos",
    selection=INGEST,
    executor_def=dg.in_process_executor,
    description="Sync photos and rebuild crops, identities and the curated dataset.",
)


@dg.sensor(
    job=ingest_job,
    minimum_interval_seconds=env_int("FACECRAFT_POLL_SECONDS", 300),
    default_status=_default_status(),
    description="Polls the photo source; one run per batch of added or removed photos, none when nothing changed.",
)
def new_photos_sensor(context: dg.SensorEvaluationContext, home: HomeResource, photo_source: PhotoSourceResource):
    check = photo_source.build(home.home()).check_for_changes(context.cursor)
    context.update_cursor(check.cursor)
    if not check.changed:
        return dg.SkipReason(f"no new or removed photos ({check.summary or 'unchanged'})")
    # No run_key: a library can return to an earlier state (photo removed, then restored), and
    # Dagster would drop a run whose key it has seen; the cursor already prevents duplicates.
    return dg.RunRequest(tags={"facecraft/trigger": "new-photos", "facecraft/changes": check.summary[:200]})


retrain_sensor = dg.AutomationConditionSensorDefinition(
    "retrain_when_dataset_changes",
    target=TRAINING,
    default_status=_default_status(),
    minimum_interval_seconds=60,
    description="Re-trains GAN, WGAN-GP and LoRA only when the curated dataset's data version changed.",
)
