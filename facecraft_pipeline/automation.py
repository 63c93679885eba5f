"""Re-training without anyone pressing a button, and no runs for nothing.

1. `new_photos_sensor` polls the photo source cheaply (OneDrive delta API / folder listing) every
   `AutomationSettings.poll_seconds` (default 300 s; `FACECRAFT_POLL_SECONDS`) and, when something
   was added or removed, requests one run of the ingest assets (photos through curated_dataset).
   Its first tick on a fresh instance -- or the first after someone materialized `photos` by hand
   -- starts from the source state the last `photos` materialization recorded (the cursor is kept in
   the data root, its sha256 in the metadata), not from nothing: an unchanged library requests no run.
2. The training assets carry `RETRAIN_WHEN_DATASET_CHANGES`: they are requested only when the
   curated dataset's *data version* changed (same photos -> same digest -> no re-training).
   `sample_galleries` has `GALLERIES_WHEN_INPUTS_CHANGE` (not `eager()`, which would re-run it after
   every ingest, since the ingest re-materializes `identity_clusters` even when its data version stays): it re-runs only
   when a model's or the owner identity's data version changed, not whenever they were re-materialized.
   `retrain_sensor` evaluates those conditions every 60 s.
Both sensors are visible and switchable in the Dagster UI (Automation tab); they start stopped
unless FACECRAFT_AUTOMATION=on.

From a new photo to a started re-training run: up to one poll interval, plus the ingest run, plus up
to one 60 s automation tick (README, "Automation", has the measured figures).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from facecraft_pipeline.atomic import write_bytes_atomic
from facecraft_pipeline.env import env_bool, env_int
from facecraft_pipeline.home import Home
from facecraft_pipeline.resources import HomeResource, PhotoSourceResource
from facecraft_pipeline.settings import setting, validate

INGEST = dg.AssetSelection.assets("photos", "face_crops", "identity_clusters", "curated_dataset")
TRAINING = dg.AssetSelection.assets("gan_checkpoint", "wgan_gp_checkpoint", "lora_weights", "sample_galleries")
PHOTOS = dg.AssetKey("photos")
SOURCE_CURSOR = "source_cursor"  # metadata key on `photos` materializations: sha256 of the source's poll cursor before the sync
_CURSOR_MARK = "facecraft_sensor"


@dataclass(frozen=True)
class AutomationSettings:
    """How often automation looks; read from the environment the Definitions are built with."""

    poll_seconds: int = setting(300, "seconds between two polls of the photo source (FACECRAFT_POLL_SECONDS)", minimum=10)
    retrain_tick_seconds: int = setting(60, "seconds between two evaluations of the re-training conditions", minimum=10)
    on: bool = setting(False, "sensors start running with the code location (FACECRAFT_AUTOMATION=on); else stopped until switched on")

    def __post_init__(self) -> None:
        validate(self)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AutomationSettings:
        return cls(poll_seconds=env_int("FACECRAFT_POLL_SECONDS", 300, env), on=env_bool("FACECRAFT_AUTOMATION", False, env))

    @property
    def default_status(self) -> dg.DefaultSensorStatus:
        return dg.DefaultSensorStatus.RUNNING if self.on else dg.DefaultSensorStatus.STOPPED


RETRAIN_WHEN_DATASET_CHANGES = (
    dg.AutomationCondition.any_deps_match(dg.AutomationCondition.data_version_changed()).since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("curated dataset's data version changed")

GALLERIES_WHEN_INPUTS_CHANGE = (
    dg.AutomationCondition.any_deps_match(dg.AutomationCondition.data_version_changed()).since_last_handled()
    & ~dg.AutomationCondition.any_deps_missing()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("a model's or the owner identity's data version changed")


ingest_job = dg.define_asset_job(
    "ingest_new_photos",
    selection=INGEST,
    executor_def=dg.in_process_executor,
    description="Sync photos and rebuild crops, identities and the curated dataset.",
)


@dataclass(frozen=True)
class SensorCursor:
    """The source's poll cursor, and which `photos` materialization it was last aligned with."""

    source: str | None = None
    photos_event: int | None = None

    @classmethod
    def parse(cls, raw: str | None) -> SensorCursor:
        if not raw:
            return cls()
        try:
            value = json.loads(raw)
        except ValueError:
            value = None
        if isinstance(value, dict) and value.get(_CURSOR_MARK) == 1:
            return cls(value.get("source"), value.get("photos_event"))
        return cls(raw)  # a cursor from before this format: the source's own

    def dump(self) -> str:
        return json.dumps({_CURSOR_MARK: 1, "source": self.source, "photos_event": self.photos_event})


def _cursor_file(home: Home) -> Path:
    return home.dir("state", "automation") / "source_cursor"


def record_source_cursor(home: Home, cursor: str) -> str:
    """Keep the source's poll cursor in the data root (a OneDrive delta link stays out of Dagster's
    metadata); the returned sha256 goes into the `photos` materialization's metadata."""
    write_bytes_atomic(_cursor_file(home), cursor.encode(), mode=0o600)
    return hashlib.sha256(cursor.encode()).hexdigest()


def recorded_source_cursor(home: Home, digest: str | None) -> str | None:
    """The cursor `record_source_cursor` kept, if it is the one with this digest."""
    try:
        cursor = _cursor_file(home).read_text()
    except OSError:
        return None
    return cursor if digest and hashlib.sha256(cursor.encode()).hexdigest() == digest else None


def _latest_photos(context: dg.SensorEvaluationContext, home: Home) -> tuple[int, str | None] | None:
    """(storage id, recorded source cursor) of the latest `photos` materialization, if any."""
    try:
        instance = context.instance
    except Exception:  # noqa: BLE001 - a sensor context built without an instance (tests): nothing to align with
        return None
    records = instance.fetch_materializations(PHOTOS, limit=1, ascending=False).records
    if not records or records[0].asset_materialization is None:
        return None
    recorded = records[0].asset_materialization.metadata.get(SOURCE_CURSOR)
    return records[0].storage_id, recorded_source_cursor(home, getattr(recorded, "value", None))


def poll_photo_source(context: dg.SensorEvaluationContext, home: HomeResource, photo_source: PhotoSourceResource):
    """One tick of `new_photos_sensor`: an ingest run when the library changed since the last ingest."""
    state = SensorCursor.parse(context.cursor)
    latest = _latest_photos(context, home.home())
    base = state.source
    if latest is not None and latest[0] != state.photos_event:
        # `photos` was materialized since we last looked (by our run, by hand, or before this instance's
        # sensor ever ran): what it recorded is the newest known state of the library.
        base = latest[1] or base
        state = SensorCursor(base, latest[0])
    check = photo_source.build(home.home()).check_for_changes(base)
    context.update_cursor(SensorCursor(check.cursor, state.photos_event).dump())
    if not check.changed:
        return dg.SkipReason(f"no new or removed photos since the last ingest ({check.summary or 'unchanged'})")
    # No run_key: a library can return to an earlier state (photo removed, then restored), and
    # Dagster would drop a run whose key it has seen; the cursor already prevents duplicates.
    return dg.RunRequest(tags={"facecraft/trigger": "new-photos", "facecraft/changes": check.summary[:200]})


def new_photos_sensor(settings: AutomationSettings) -> dg.SensorDefinition:
    return dg.sensor(
        name="new_photos_sensor",
        job=ingest_job,
        minimum_interval_seconds=settings.poll_seconds,
        default_status=settings.default_status,
        description=f"Polls the photo source every {settings.poll_seconds} s (FACECRAFT_POLL_SECONDS); one ingest run per batch "
        "of added or removed photos, none when nothing changed since the last ingest.",
    )(poll_photo_source)


def retrain_sensor(settings: AutomationSettings) -> dg.AutomationConditionSensorDefinition:
    return dg.AutomationConditionSensorDefinition(
        "retrain_when_dataset_changes",
        target=TRAINING,
        default_status=settings.default_status,
        minimum_interval_seconds=settings.retrain_tick_seconds,
        description=f"Every {settings.retrain_tick_seconds} s: re-trains GAN, WGAN-GP and LoRA only when the curated dataset's "
        "data version changed, and re-renders the galleries only when a model's or the owner's data version changed.",
    )
