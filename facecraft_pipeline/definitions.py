"""The FaceCraft code location: assets, checks, resources, jobs and automation.

    photos -> face_crops -> identity_clusters -> curated_dataset -> gan_checkpoint ------\
                                                                  -> wgan_gp_checkpoint --> sample_galleries
                                                                  -> lora_weights -------/
"""

from __future__ import annotations

import warnings
from pathlib import Path

import dagster as dg

from facecraft_pipeline.assets.checks import CHECKS
from facecraft_pipeline.assets.dataset import curated_dataset
from facecraft_pipeline.assets.faces import face_crops, identity_clusters
from facecraft_pipeline.assets.galleries import sample_galleries
from facecraft_pipeline.assets.photos import photos
from facecraft_pipeline.assets.training import gan_checkpoint, lora_weights, wgan_gp_checkpoint
from facecraft_pipeline.automation import ingest_job, new_photos_sensor, retrain_sensor
from facecraft_pipeline.deploy import everything_on_kubernetes
from facecraft_pipeline.failure_report import failed_run_report
from facecraft_pipeline.log_safety import install as install_log_safety
from facecraft_pipeline.resources import ComputeResource, HomeResource, MlflowResource, photo_source_from_env

# Data versions on outputs are how this project tells Dagster what is stale: a deliberate beta API.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
install_log_safety()  # no token or pre-authenticated URL in any log, whatever the level

# Each carries its retry policy for transient faults and its Kubernetes step tags (deploy.step_options).
ASSETS = [photos, face_crops, identity_clusters, curated_dataset, gan_checkpoint, wgan_gp_checkpoint, lora_weights, sample_galleries]

everything_job = dg.define_asset_job(
    "everything",
    selection=dg.AssetSelection.all(),
    executor_def=dg.in_process_executor,
    description="The whole graph, one step after another in one process (one device, no oversubscription).",
)


def resources(home: HomeResource | None = None) -> dict[str, object]:
    """The resources every asset shares, configured from the environment now; tests pass their own data root."""
    home = home or HomeResource()
    return {
        "home": home,
        "compute": ComputeResource.from_env(),
        "mlflow": MlflowResource.from_env(),
        "photo_source": photo_source_from_env(),
        "io_manager": dg.FilesystemIOManager(base_dir=str(Path(home.root) / "dagster" / "io")),
    }


defs = dg.Definitions(
    assets=ASSETS,
    asset_checks=CHECKS,
    jobs=[everything_job, ingest_job, everything_on_kubernetes()],
    sensors=[new_photos_sensor, retrain_sensor, failed_run_report],
    resources=resources(),
)
