"""`gan_checkpoint`, `wgan_gp_checkpoint` and `lora_weights`: models trained on the curated dataset.

Each run trains into a folder named by (dataset digest, settings, code version): the same
dataset and settings find their finished model and re-use it, an interrupted run resumes there.
"""


import dataclasses
import hashlib
import json
from pathlib import Path

import dagster as dg

from facecraft_pipeline.assets.config import config_class, to_settings
from facecraft_pipeline.assets.tracking import asset_run, output, preview
from facecraft_pipeline.automation import RETRAIN_WHEN_DATASET_CHANGES
from facecraft_pipeline.dataset.curate import CuratedDataset
from facecraft_pipeline.gan import GanSettings, GanTrainResult, train_gan
from facecraft_pipeline.lineage import TAG_ARTIFACT_SHA
from facecraft_pipeline.lora import FACTS_NAME, LoraSettings, LoraTrainResult, train_lora
from facecraft_pipeline.resources import ComputeResource, HomeResource, MlflowResource
from facecraft_pipeline.sources.base import sha256_file

GanCheckpointConfig = config_class(GanSettings, "gan_checkpoint", fixed=("kind",))
WganGpCheckpointConfig = config_class(GanSettings, "wgan_gp_checkpoint", fixed=("kind",))
LoraWeightsConfig = config_class(LoraSettings, "lora_weights")

TRAINING = {"group_name": "training", "automation_condition": RETRAIN_WHEN_DATASET_CHANGES, "pool": "accelerator"}


def run_folder(context: dg.AssetExecutionContext, home: HomeResource, dataset: CuratedDataset, settings: object) -> Path:
    """models/<asset>/<key>: one folder per (dataset, settings, code version) so results are never mixed."""
    code_version = context.assets_def.code_versions_by_key[context.asset_key]
    fingerprint = json.dumps([dataset.digest, dataclasses.asdict(settings), code_version], sort_keys=True)  # type: ignore[call-overload]
    key = hashlib.sha256(fingerprint.encode()).hexdigest()[:16]
    return home.home().dir("models", context.asset_key.to_user_string(), key)


def _train_gan(context, settings: GanSettings, dataset, home, mlflow, compute) -> dg.Output[GanTrainResult]:
    asset = context.asset_key.to_user_string()
    folder = run_folder(context, home, dataset, settings)
    with asset_run(context, home, mlflow, inputs={"curated_dataset": dataset.digest}, params=dataclasses.asdict(settings)) as run:
        result = train_gan(dataset.train_paths, folder, settings, compute.torch_device(), on_metrics=lambda s, m: run.log_metrics(m, s))
        digest = sha256_file(result.checkpoint)
        run.set_tags({TAG_ARTIFACT_SHA: digest, "device": result.device, "dtype": result.dtype})
        run.log_picture(result.samples)
        version = run.register_model(f"facecraft-{asset.replace('_', '-')}", folder)
        return output(
            result,
            run,
            digest,
            {
                "summary": f"{result.steps} steps on {result.device}/{result.dtype}"
                + (" (re-used, dataset and settings unchanged)" if result.reused else "")
                + (f" (resumed from step {result.resumed_from})" if result.resumed_from and not result.reused else ""),
                "reused": result.reused,
                "resumed_from": result.resumed_from,
                "device": result.device,
                "dtype": result.dtype,
                "images_per_second": round(result.images_per_second, 1),
                "train_seconds": round(result.seconds, 1),
                **{k: float(v) for k, v in result.final_metrics.items()},
                "model_version": version,
                "samples": preview(result.samples),
                "location": dg.MetadataValue.path(str(result.checkpoint)),
            },
        )


@dg.asset(code_version="gan_checkpoint-1", kinds={"pytorch"}, **TRAINING)
def gan_checkpoint(
    context: dg.AssetExecutionContext,
    config: GanCheckpointConfig,
    curated_dataset: CuratedDataset,
    home: HomeResource,
    mlflow: MlflowResource,
    compute: ComputeResource,
) -> dg.Output[GanTrainResult]:
    """DCGAN (BCE, BatchNorm G, label smoothing, DiffAugment, EMA) trained on the owner's faces."""
    return _train_gan(context, to_settings(GanSettings, config, kind="dcgan"), curated_dataset, home, mlflow, compute)


@dg.asset(code_version="wgan_gp_checkpoint-1", kinds={"pytorch"}, **TRAINING)
def wgan_gp_checkpoint(
    context: dg.AssetExecutionContext,
    config: WganGpCheckpointConfig,
    curated_dataset: CuratedDataset,
    home: HomeResource,
    mlflow: MlflowResource,
    compute: ComputeResource,
) -> dg.Output[GanTrainResult]:
    """WGAN-GP (critic without BatchNorm, gradient penalty, n_critic steps) on the owner's faces."""
    return _train_gan(context, to_settings(GanSettings, config, kind="wgan_gp"), curated_dataset, home, mlflow, compute)


@dg.asset(code_version="lora_weights-1", kinds={"pytorch", "diffusers"}, **TRAINING)
def lora_weights(
    context: dg.AssetExecutionContext,
    config: LoraWeightsConfig,
    curated_dataset: CuratedDataset,
    home: HomeResource,
    mlflow: MlflowResource,
    compute: ComputeResource,
) -> dg.Output[LoraTrainResult]:
    """DreamBooth-style LoRA on the Stable Diffusion UNet, saved with diffusers' save_lora_weights."""
    settings = to_settings(LoraSettings, config)
    folder = run_folder(context, home, curated_dataset, settings)
    with asset_run(context, home, mlflow, inputs={"curated_dataset": curated_dataset.digest}, params=dataclasses.asdict(settings)) as run:
        result = train_lora(
            curated_dataset.train_paths,
            folder,
            settings,
            compute.torch_device(),
            cache_dir=home.home().models_cache,
            on_metrics=lambda s, m: run.log_metrics(m, s),
        )
        digest = sha256_file(result.weights_file)
        base = result.base_model
        run.set_tags({TAG_ARTIFACT_SHA: digest, "base_model": base.description, "device": result.device, "dtype": result.dtype})
        run.log_artifact(result.weights_file, "lora")
        run.log_artifact(result.weights_dir / FACTS_NAME, "lora")
        version = run.register_model("facecraft-lora", result.weights_dir)
        if base.is_tiny_random:
            context.log.warning(f"base model: {base.description}")
        return output(
            result,
            run,
            digest,
            {
                "summary": f"LoRA r{settings.rank} on {base.description}: {result.steps} steps on {result.device}"
                + (" (re-used)" if result.reused else ""),
                "base_model": base.description,
                "base_model_is_tiny_random": base.is_tiny_random,
                "reused": result.reused,
                "resumed_from": result.resumed_from,
                "final_loss": result.final_loss,
                "device": result.device,
                "dtype": result.dtype,
                "images_per_second": round(result.images_per_second, 2),
                "model_version": version,
                "location": dg.MetadataValue.path(str(result.weights_file)),
            },
        )
