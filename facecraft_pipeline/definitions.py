"""The FaceCraft code location: assets, checks, resources, jobs and automation, built for one profile and environment.

    photos -> face_crops -> identity_clusters -> curated_dataset -> gan_checkpoint ------\\
                                                                  -> wgan_gp_checkpoint --> sample_galleries
                                                                  -> lora_weights -------/

`build_definitions(profile, env)` is the one place the settings and the environment meet the graph: the assets'
config defaults come from the profile, resources, step options and sensors from `env`. `defs` below is built from
this process's environment for `dagster dev`, workspace.yaml and the CLI; a test builds its own for any profile and
environment without touching `os.environ`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path

import dagster as dg

from facecraft_pipeline.assets.checks import CHECKS
from facecraft_pipeline.assets.dataset import curated_dataset
from facecraft_pipeline.assets.face_shards import face_shards
from facecraft_pipeline.assets.faces import face_crops, identity_clusters
from facecraft_pipeline.assets.galleries import sample_galleries
from facecraft_pipeline.assets.photos import photos
from facecraft_pipeline.assets.recipe import AssetRecipe
from facecraft_pipeline.assets.training import gan_checkpoint, lora_weights, wgan_gp_checkpoint
from facecraft_pipeline.automation import AutomationSettings, ingest_job, new_photos_sensor, retrain_sensor
from facecraft_pipeline.deploy import K8sSettings, everything_on_kubernetes, step_tags
from facecraft_pipeline.failure_report import failed_run_report
from facecraft_pipeline.log_safety import install as install_log_safety
from facecraft_pipeline.resources import ComputeResource, HomeResource, MlflowResource, photo_source_from_env
from facecraft_pipeline.settings.constraints import check_constraints
from facecraft_pipeline.settings.profiles import DEFAULT_PROFILE, check_profile

# Data versions on outputs are how this project tells Dagster what is stale: a deliberate beta API.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
install_log_safety()  # no token or pre-authenticated URL in any log, whatever the level

RECIPES: list[AssetRecipe] = [photos, face_shards, face_crops, identity_clusters, curated_dataset, gan_checkpoint, wgan_gp_checkpoint,
                              lora_weights, sample_galleries]

# The graph a run materializes as a whole: all but the partitioned first pass (a backfill of its own, below).
WHOLE_GRAPH = dg.AssetSelection.all() - dg.AssetSelection.assets("face_shards")

everything_job = dg.define_asset_job(
    "everything",
    selection=WHOLE_GRAPH,
    executor_def=dg.multiprocess_executor,
    description="The whole graph; steps that do not depend on each other (the three trainers) run in parallel "
                "processes (`facecraft materialize --steps-at-once N`; in the launchpad: execution.config.max_concurrent).",
)


def face_shards_job(env: Mapping[str, str]) -> dg.UnresolvedAssetJobDefinition:
    """One run per shard of the first face extraction; on Kubernetes each run's pod is sized like a faces step."""
    return dg.define_asset_job(
        "extract_face_shards",
        selection=dg.AssetSelection.assets("face_shards"),
        tags=step_tags(None, "faces", K8sSettings.from_env(env)),
        description="The first face extraction of a big library, one run per shard: backfill its partitions (one pod each on "
                    "Kubernetes: `dagster job backfill -j extract_face_shards --all`), then materialize `everything`.",
    )


def profile_defaults(profile: str) -> dict[str, dict]:
    """Each configurable asset's launchpad defaults under `profile`, as plain dicts."""
    return {r.name: config().model_dump() for r in RECIPES if (config := r.config_class(profile)) is not None}


def build_assets(profile: str = DEFAULT_PROFILE, env: Mapping[str, str] | None = None) -> list[dg.AssetsDefinition]:
    """The graph's assets with `profile`'s config defaults and `env`'s step options (retries, Kubernetes tags);
    the profile's defaults must keep the cross-asset rules (settings/constraints.py)."""
    check_constraints(profile_defaults(check_profile(profile)))
    return [recipe.build(profile, {} if env is None else env) for recipe in RECIPES]


def check_run_config(profile: str, run_config: Mapping[str, Mapping]) -> None:
    """The cross-asset rules on a run's settings: `profile`'s defaults with the run's `ops.<asset>.config` over them."""
    values = profile_defaults(profile)
    for asset, section in run_config.get("ops", {}).items():
        values[asset] = {**values.get(asset, {}), **section.get("config", {})}
    check_constraints(values)


def build_resources(env: Mapping[str, str], home: HomeResource | None = None) -> dict[str, object]:
    """The resources every asset shares, configured from `env`; tests pass their own data root."""
    home = home or HomeResource.from_env(env)
    return {
        "home": home,
        "compute": ComputeResource.from_env(env),
        "mlflow": MlflowResource.from_env(env),
        "photo_source": photo_source_from_env(env),
        "io_manager": dg.FilesystemIOManager(base_dir=str(Path(home.root) / "dagster" / "io")),
    }


def build_definitions(profile: str | None = None, env: Mapping[str, str] | None = None,
                      home: HomeResource | None = None) -> dg.Definitions:
    """Everything the code location serves, for `profile` (default: env's FACECRAFT_PROFILE, else demo) and `env`
    (default: none set, the library defaults)."""
    env = {} if env is None else env
    profile = profile or env.get("FACECRAFT_PROFILE") or DEFAULT_PROFILE
    automation = AutomationSettings.from_env(env)
    return dg.Definitions(
        assets=build_assets(profile, env),
        asset_checks=CHECKS,
        jobs=[everything_job, face_shards_job(env), ingest_job, everything_on_kubernetes(WHOLE_GRAPH)],
        sensors=[new_photos_sensor(automation), retrain_sensor(automation), failed_run_report],
        resources=build_resources(env, home),
    )


defs = build_definitions(env=os.environ)
