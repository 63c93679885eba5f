"""`gan_checkpoint`, `wgan_gp_checkpoint` and `lora_weights`: models trained on the curated dataset.

Each trains through the one run protocol (`training.train`): the run folder is named by (dataset
digest, result-changing settings, recipe version), so the same dataset and settings find their
finished run and re-use it, an interrupted one resumes, and a raised `run.steps` continues it.
"""



import base64
import json
from pathlib import Path

import dagster as dg
import numpy as np
import torch
from PIL import Image

from facecraft_pipeline.assets.recipe import asset_recipe
from facecraft_pipeline.assets.tracking import asset_run, output, preview
from facecraft_pipeline.automation import RETRAIN_WHEN_DATASET_CHANGES
from facecraft_pipeline.dataset.curate import CuratedDataset
from facecraft_pipeline.dataset.diffusion_crops import DiffusionView, build_diffusion_view
from facecraft_pipeline.dataset.manifest import read_manifest
from facecraft_pipeline.digest import sha256_file
from facecraft_pipeline.faces.attributes import attribute_matrix
from facecraft_pipeline.faces.probe import IdentityProbe
from facecraft_pipeline.gan import GanSettings, face_quality_scorer, train_gan
from facecraft_pipeline.gan.checkpoint import load_generator
from facecraft_pipeline.gan.conditioning import IdentityCondition, conditioning_quality
from facecraft_pipeline.gan.sample_quality import kid_name
from facecraft_pipeline.lora import LoraSettings, base_model_of, train_lora
from facecraft_pipeline.mlflow_store import LORA_MODEL, MODEL_OF_ASSET, TAG_ARTIFACT_SHA
from facecraft_pipeline.resources import ComputeResource, HomeResource, MlflowResource
from facecraft_pipeline.retries import final_unless_transient
from facecraft_pipeline.settings import to_dict
from facecraft_pipeline.settings.constraints import check_constraints
from facecraft_pipeline.settings.dagster_config import to_settings
from facecraft_pipeline.training import ProgressLine, TrainResult
from facecraft_pipeline.training.progress import bar

TRAINING = {"group": "training", "pool": "accelerator", "automation_condition": RETRAIN_WHEN_DATASET_CHANGES}


def _progress(context: dg.AssetExecutionContext, run, compute: ComputeResource) -> list:
    """Log line + MLflow metrics at each logging step; a bar too when the run asked for one (`facecraft materialize`)."""
    asset = context.asset_key.to_user_string()

    def report(line: ProgressLine) -> None:
        context.log.info(f"{asset}: {line}")
        run.log_metrics({**line.metrics, "img_per_s": line.images_per_second}, line.step)

    return [report, bar(asset)] if compute.progress_bar else [report]


def _summary(result: TrainResult) -> str:
    text = f"{result.steps} steps on {result.device}/{result.dtype}"
    if result.reused:
        return text + " (re-used: dataset and settings unchanged)"
    if result.resumed_from:
        return text + f" (continued from step {result.resumed_from})"
    return text


def _common_metadata(result: TrainResult) -> dict:
    return {
        "reused": result.reused,
        "resumed_from": result.resumed_from,
        "run_folder": dg.MetadataValue.path(str(result.folder)),
        "run_key": result.key,
        "kept_checkpoints": [step for step, _ in result.checkpoints],
        "device": result.device,
        "dtype": result.dtype,
        "images_per_second": round(result.images_per_second, 1),
        "train_seconds": round(result.seconds, 1),
        **{k: float(v) for k, v in result.metrics.items()},
    }


def _gan_controls(settings: GanSettings, dataset: CuratedDataset) -> torch.Tensor | None:
    """The control vector of each training image, from the attributes the curated manifest records."""
    if not settings.control_names:
        return None
    if settings.condition == "identity" and dataset.library is not None:
        return torch.from_numpy(dataset.library.controls(settings.control_names))
    records = {r["file"]: r for r in json.loads(dataset.manifest_path.read_text())["images"]}
    rows = [records[str(p.relative_to(dataset.folder))] for p in dataset.train_paths]
    return torch.from_numpy(attribute_matrix(rows, settings.control_names))


def _gan_images(settings: GanSettings, dataset: CuratedDataset) -> tuple[list[Path], dict]:
    """The owner's training crops, or (identity-conditioned) every person's faces with their embeddings."""
    if settings.condition != "identity":
        return list(dataset.train_paths), {}
    library = dataset.library
    if library is None or not len(library.owner_embeddings):
        raise dg.Failure("condition='identity' needs the library faces with the owner's among them: re-materialize curated_dataset")
    return list(library.paths), {"identity": IdentityCondition(torch.from_numpy(library.embeddings),
                                                               torch.from_numpy(library.owner_embeddings),
                                                               {name: torch.from_numpy(v) for name, v in library.centroids().items()})}


def _gan_quality(settings: GanSettings, dataset: CuratedDataset):
    """The pipeline's identity probe (identity_clusters', carried by the dataset) as the GAN's quality scorer: KID on its
    embeddings against the held-out crops (the training crops too when fewer than 2 are held out), faces found, owner similarity."""
    if not settings.quality_every:
        return None
    probe = IdentityProbe(dataset.probe)
    owner = [v for v in probe.embed([Image.open(p) for p in dataset.train_paths]) if v is not None]
    held_out = [v for v in probe.embed([Image.open(p) for p in dataset.val_paths]) if v is not None]
    reference = np.stack(held_out if len(held_out) >= 2 else owner + held_out)
    return face_quality_scorer(probe.embed, reference, np.stack(owner).mean(0) if owner else None,
                               probe.embedder.same_person_distance, name=kid_name(probe.name))


def _gif_preview(path: Path) -> dg.MetadataValue:
    """The training GIF inline in the metadata panel (tracking.preview is PNG-only)."""
    return dg.MetadataValue.md(f"![training](data:image/gif;base64,{base64.b64encode(path.read_bytes()).decode()})")


def _on_sample(run):
    """Each grid as an MLflow step image (when images may be logged) and the quality scores as metrics."""
    def record(step: int, grid: Path, metrics: dict[str, float]) -> None:
        if run.log_images:
            with Image.open(grid) as image:
                run.log_image(image.convert("RGB"), key="samples", step=step)
        run.log_metrics(metrics, step)

    return record


def _train_gan(context, settings: GanSettings, dataset: CuratedDataset, home, mlflow, compute) -> dg.Output[TrainResult]:
    asset = context.asset_key.to_user_string()
    check_constraints({asset: {"resolution": settings.resolution}, "curated_dataset": {"resolution": dataset.resolution or None}})
    paths, identity = _gan_images(settings, dataset)
    with asset_run(context, home, mlflow, inputs={"curated_dataset": dataset.version}, params=to_dict(settings)) as run:
        result = train_gan(paths, home.home().dir("models", asset), settings, compute.torch_device(),
                           _progress(context, run, compute), controls=_gan_controls(settings, dataset),
                           quality=_gan_quality(settings, dataset), on_sample=_on_sample(run), held_out=dataset.val_paths,
                           **identity)
        for warning in result.info.warnings:
            context.log.warning(f"{asset}: {warning}")
        checkpoint = result.artifact("checkpoint")
        digest = sha256_file(checkpoint)
        run.set_tags({TAG_ARTIFACT_SHA: digest, "device": result.device, "dtype": result.dtype})
        for name in ("samples", "gif", "interpolation", "interpolation_2d"):
            if name in result.artifacts:
                run.log_picture(result.artifact(name))
        run.log_artifact(result.folder / "run.json")
        version = run.register_model(MODEL_OF_ASSET[asset], result.folder)
        best = result.info.best or {}
        inputs = result.info.inputs
        metadata = {"summary": _summary(result), **_common_metadata(result), "model_version": version,
                    "architecture": f"{settings.arch} {settings.resolution}px, loss {settings.loss_kind}",
                    "condition": settings.condition,
                    "training_images": inputs.get("images", len(paths)),
                    "distinct_images": inputs.get("distinct_images", len(paths)),
                    "owner_images": inputs.get("owner_images", len(paths)),
                    "warnings": "\n".join(result.info.warnings) or "none",
                    "controls": list(settings.control_names),
                    "samples": preview(result.artifact("samples")),
                    "interpolation": preview(result.artifact("interpolation")),
                    "location": dg.MetadataValue.path(str(checkpoint))}
        if settings.condition == "identity" and dataset.library is not None:
            probe = IdentityProbe(dataset.probe)
            shares = conditioning_quality(load_generator(checkpoint), dataset.library.faces_by_person(3), probe.embed,
                                          same_person=probe.embedder.same_person_distance, metric=probe.embedder.metric)
            run.log_metrics({f"conditioning_{name}": share for name, share in shares.items()})
            metadata["conditioning_quality"] = dg.MetadataValue.md(
                f"share of samples conditioned on each person (>= 3 faces) that {probe.name} judges to be them\n\n| person | share |\n|---|---|\n"
                + "\n".join(f"| {name} | {share:.2f} |" for name, share in shares.items()))
        if "gif" in result.artifacts:
            metadata["training_gif"] = _gif_preview(result.artifact("gif"))
        if best:
            metadata["best_step"] = best["step"]
            metadata.update({f"best_{k}": float(v) for k, v in best.items() if k not in ("step", "by")})
        return output(result, run, digest, metadata)


@asset_recipe(settings=GanSettings, fixed=("kind",), code_version="gan_checkpoint-3", kinds={"pytorch"}, priority=1, **TRAINING)
@final_unless_transient
def gan_checkpoint(
    context: dg.AssetExecutionContext,
    config: dg.Config,
    curated_dataset: CuratedDataset,
    home: HomeResource,
    mlflow: MlflowResource,
    compute: ComputeResource,
) -> dg.Output[TrainResult]:
    """Face GAN (Upsample+conv G, spectral-norm D, BCE/hinge, R1, GAN-hacks, DiffAugment/ADA, EMA, optional controls and
    progressive growing) trained on the owner's faces; grids, training GIF, interpolation sheets, quality scores."""
    return _train_gan(context, to_settings(GanSettings, config, kind="dcgan"), curated_dataset, home, mlflow, compute)


@asset_recipe(settings=GanSettings, fixed=("kind",), code_version="wgan_gp_checkpoint-3", kinds={"pytorch"}, priority=2, **TRAINING)
@final_unless_transient
def wgan_gp_checkpoint(
    context: dg.AssetExecutionContext,
    config: dg.Config,
    curated_dataset: CuratedDataset,
    home: HomeResource,
    mlflow: MlflowResource,
    compute: ComputeResource,
) -> dg.Output[TrainResult]:
    """WGAN-GP (critic without BatchNorm, gradient penalty, n_critic steps) on the owner's faces."""
    return _train_gan(context, to_settings(GanSettings, config, kind="wgan_gp"), curated_dataset, home, mlflow, compute)


def _lora_view(context, dataset: CuratedDataset, settings: LoraSettings, home, split: str = "train") -> DiffusionView:
    """The LoRA view of the curated dataset: crops from the original photos, which the dataset records;
    `split` "val": the held-out photos' crops, for the validation loss (may be empty)."""
    view = build_diffusion_view(read_manifest(dataset.folder), home.dir("lora_views"), settings.data,
                                resolution=settings.resolution, trigger=settings.trigger, class_word=settings.class_word,
                                split=split)
    if split != "train":
        return view
    if not view.examples:
        raise dg.Failure(f"no image of the dataset suits the LoRA view at {settings.resolution} px: "
                         + "; ".join(sorted({reason for _, reason in view.excluded})))
    for photo_id, reason in view.excluded:
        context.log.info(f"lora_weights: left out {photo_id}: {reason}")
    return view


@asset_recipe(settings=LoraSettings, code_version="lora_weights-3", kinds={"pytorch", "diffusers"}, **TRAINING)
@final_unless_transient
def lora_weights(
    context: dg.AssetExecutionContext,
    config: dg.Config,
    curated_dataset: CuratedDataset,
    home: HomeResource,
    mlflow: MlflowResource,
    compute: ComputeResource,
) -> dg.Output[TrainResult]:
    """DreamBooth-style LoRA (SD 1.x/2.x, SDXL, FLUX.1 or Z-Image) on head-and-shoulders crops of the owner's original
    photos; other people's faces in a crop are left out of the loss, the held-out crops give val_loss.

    Writes pytorch_lora_weights.safetensors (diffusers) and lora_kohya.safetensors (kohya / A1111 / ComfyUI; not Z-Image),
    both with provenance in the header, and a loadable LoRA beside each kept checkpoint for the sweep.
    """
    settings = to_settings(LoraSettings, config)
    h = home.home()
    with asset_run(context, home, mlflow, inputs={"curated_dataset": curated_dataset.version}, params=to_dict(settings)) as run:
        view = _lora_view(context, curated_dataset, settings, h)
        held_out = _lora_view(context, curated_dataset, settings, h, "val").examples if settings.validation_loss_every else ()
        result = train_lora(view.examples, h.dir("models", "lora_weights"), settings, compute.torch_device(),
                            cache_dir=h.models_cache, progress=_progress(context, run, compute), dataset_digest=curated_dataset.digest,
                            held_out=held_out)
        weights = result.artifact("weights")
        digest = sha256_file(weights)
        base = base_model_of(result)
        run.set_tags({TAG_ARTIFACT_SHA: digest, "base_model": base.description, "device": result.device, "dtype": result.dtype,
                      "lora_view": view.digest, "trigger": settings.trigger})
        run.log_artifact(weights, "lora")
        if "kohya_weights" in result.artifacts:  # every family but Z-Image
            run.log_artifact(result.artifact("kohya_weights"), "lora")
        run.log_artifact(result.folder / "run.json", "lora")
        run.log_artifact(view.manifest_path, "lora_view")
        for picture in [result.artifacts.get("validation"), *sorted((result.folder / "samples").glob("step_*.png"))]:
            if picture is not None and picture.is_file():
                run.log_picture(picture, "validation")
        description = (f"LoRA of '{settings.instance_prompt}' (trigger word: {settings.trigger}) on base model {base.spec} "
                       f"({base.family}; {base.description}); rank {settings.rank}, alpha {settings.alpha}, {result.steps} steps")
        version = run.register_model(LORA_MODEL, result.folder, description=description,  # one version per weights digest
                                     tags={"trigger": settings.trigger, "base_model": base.spec, "steps": str(result.steps)})
        if base.is_tiny_random:
            context.log.warning(f"base model: {base.description}")
        metadata = {
            "summary": f"LoRA r{settings.rank} on {base.description}: {_summary(result)}",
            **_common_metadata(result),
            "base_model": base.description,
            "base_model_family": base.family,
            "base_model_is_tiny_random": base.is_tiny_random,
            "trigger": settings.trigger,
            "model_version": version,
            "lora_images": len(view.examples),
            "lora_left_out": dg.MetadataValue.md(
                "\n".join(f"- {photo}: {reason}" for photo, reason in view.excluded) or "none"),
            "captions": dg.MetadataValue.md("\n".join(f"- {e.caption}" for e in view.examples[:20])),
            "location": dg.MetadataValue.path(str(weights)),
        }
        if "kohya_weights" in result.artifacts:
            metadata["kohya_weights"] = dg.MetadataValue.path(str(result.artifact("kohya_weights")))
        if "validation" in result.artifacts:
            metadata["validation"] = preview(result.artifact("validation"))
        return output(result, run, digest, metadata)
