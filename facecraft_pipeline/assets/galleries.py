"""`sample_galleries`: fixed-seed samples from every model, scored against the owner's face."""


import dataclasses
import hashlib
import json

import dagster as dg

from facecraft_pipeline.assets.config import config_class, to_settings
from facecraft_pipeline.assets.tracking import asset_run, output, preview
from facecraft_pipeline.faces.detect import make_detector
from facecraft_pipeline.faces.embed import make_embedder
from facecraft_pipeline.faces.extract import FaceCropSettings
from facecraft_pipeline.faces.identity import OwnerIdentity
from facecraft_pipeline.faces.identity_score import score_identity
from facecraft_pipeline.gallery import Gallery, GallerySettings, load_gallery, render_gallery
from facecraft_pipeline.gan import load_generator, sample_images
from facecraft_pipeline.lineage import latest_model_version
from facecraft_pipeline.lora import LoraSettings, base_model_of, generate, load_lora_pipeline
from facecraft_pipeline.training import TrainResult
from facecraft_pipeline.resources import ComputeResource, HomeResource, MlflowResource
from facecraft_pipeline.digest import sha256_file

SampleGalleriesConfig = config_class(
    GallerySettings, "sample_galleries", extra={
        "detector": (str, "dlib", "face detector used to find faces in generated images"),
        "embedder": (str, "dlib", "identity embedder; must be the one identity_clusters used"),
        "onnx_model": (str | None, None, "path of the ONNX embedding model when embedder is onnx"),
    },
)
REGISTERED = {"gan": "facecraft-gan-checkpoint", "wgan_gp": "facecraft-wgan-gp-checkpoint", "lora": "facecraft-lora"}


@dg.asset(
    code_version="sample_galleries-1",
    group_name="evaluation",
    kinds={"pytorch"},
    automation_condition=dg.AutomationCondition.eager(),
    pool="accelerator",
)
def sample_galleries(
    context: dg.AssetExecutionContext,
    config: SampleGalleriesConfig,
    gan_checkpoint: TrainResult,
    wgan_gp_checkpoint: TrainResult,
    lora_weights: TrainResult,
    identity_clusters: OwnerIdentity,
    home: HomeResource,
    mlflow: MlflowResource,
    compute: ComputeResource,
) -> dg.Output[Gallery]:
    """PNG grids per model, identity similarity of generated faces to the owner, and a champion."""
    settings = to_settings(GallerySettings, config)
    device = compute.torch_device()
    embedder = make_embedder(config.embedder, config.onnx_model)
    if embedder.name != identity_clusters.embedder:
        raise dg.Failure(f"gallery embedder {embedder.name} differs from the one the owner was found with ({identity_clusters.embedder})")
    centroid = identity_clusters.owner_centroid
    if centroid is None:
        raise dg.Failure("no owner cluster: nothing to score generated faces against")
    upstream = {
        "gan_checkpoint": sha256_file(gan_checkpoint.artifact("checkpoint")),
        "wgan_gp_checkpoint": sha256_file(wgan_gp_checkpoint.artifact("checkpoint")),
        "lora_weights": sha256_file(lora_weights.artifact("weights")),
        "identity_clusters": identity_clusters.digest,
    }
    key = hashlib.sha256(json.dumps([upstream, dataclasses.asdict(settings), config.detector], sort_keys=True).encode()).hexdigest()[:16]
    folder = home.home().dir("galleries", key)
    base = base_model_of(lora_weights)
    with asset_run(context, home, mlflow, inputs=upstream, params=config.model_dump()) as run:
        reused = load_gallery(folder)
        if reused is None:
            detector = make_detector(dataclasses.replace(FaceCropSettings(), detector=config.detector).detector_settings(), device)
            samplers, notes = _samplers(gan_checkpoint, wgan_gp_checkpoint, lora_weights, settings, device)
            scorer = lambda images: score_identity(images, detector, embedder, centroid)  # noqa: E731
            gallery = render_gallery(samplers, folder, settings, scorer, notes)
        else:
            gallery = reused
        meta: dict = {"reused": reused is not None}
        for model in gallery.models:
            run.log_metrics(model.score.as_metrics(model.name))
            run.log_picture(model.grid, "grids")
            meta[f"grid_{model.name}"] = preview(model.grid)
            meta[f"{model.name}_faces_found"] = f"{model.score.faces}/{model.score.images}"
            if model.score.mean is not None:
                meta[f"{model.name}_identity_similarity"] = dg.MetadataValue.json(
                    {"mean": model.score.mean, "min": model.score.min, "max": model.score.max}
                )
        run.log_artifact(gallery.report)
        champion_version = latest_model_version(run.client, REGISTERED[gallery.champion]) if gallery.champion else None
        if champion_version:
            run.client.set_registered_model_alias(REGISTERED[gallery.champion], "champion", champion_version)
        honest = " Base model is tiny and random: its images are noise." if base.is_tiny_random else ""
        meta.update(
            {
                "summary": f"champion: {gallery.champion or 'none'} ({gallery.champion_reason}).{honest}",
                "champion": gallery.champion or "none",
                "champion_reason": gallery.champion_reason,
                "base_model": base.description,
                "report": dg.MetadataValue.path(str(gallery.report)),
                "location": dg.MetadataValue.path(str(folder)),
            }
        )
        return output(gallery, run, gallery.digest, meta)


def _samplers(gan: TrainResult, wgan_gp: TrainResult, lora: TrainResult, settings: GallerySettings, device):
    """(n, seed) -> images for each model, and a plain note on what each model is."""
    base = base_model_of(lora)
    pipe = load_lora_pipeline(base, lora.folder, device)
    prompt = settings.prompt or lora.info.get("settings", {}).get("instance_prompt") or LoraSettings().instance_prompt
    samplers = {
        "gan": lambda n, seed: sample_images(load_generator(gan.artifact("checkpoint"), device), n, seed, device),
        "wgan_gp": lambda n, seed: sample_images(load_generator(wgan_gp.artifact("checkpoint"), device), n, seed, device),
        "lora": lambda n, seed: generate(pipe, prompt, n, seed, settings.num_inference_steps, settings.guidance_scale, settings.resolution),
    }
    notes = {
        "gan": f"DCGAN, {gan.steps} steps",
        "wgan_gp": f"WGAN-GP, {wgan_gp.steps} steps",
        "lora": f"LoRA on {base.description}",
    }
    return samplers, notes
