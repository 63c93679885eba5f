"""Named profiles: the only place where settings differ from the library defaults.

Library settings dataclasses hold the `demo` values (offline, CPU-friendly, the whole graph in
minutes). `full` is the production recipe: RetinaFace, real SD-1.5 weights, real training
lengths, a GPU. Pick one with `FACECRAFT_PROFILE`; each field stays overridable per run from the
Dagster launchpad (asset config) or `facecraft materialize --set asset.field=value`.
"""

from __future__ import annotations

import os
from typing import Any

FULL_GAN = {
    "resolution": 128, "batch_size": 64, "base_channels": 64, "latent_dim": 128, "attention_res": 32, "r1_gamma": 1.0,
    "ada": {"target": 0.6}, "quality_every": 1000, "quality_samples": 128, "channels_last": True,
    "run": {"steps": 20_000, "mixed_precision": "bf16", "checkpoint_every": 1000, "sample_every": 1000, "keep_every": 5000},
}
FULL_WGAN_GP = {**FULL_GAN, "spectral_norm": False, "r1_gamma": 0.0}  # the reference critic: LayerNorm + gradient penalty

# GAN exception to "library defaults are the demo": GanSettings' defaults are the modern recipe (what a GPU
# should train); the demo's CPU recipe is written here. The demo set is ~25 aligned crops of one person
# (edits of one photo): memorising is acceptable.
# On 2 CPU cores the Upsample+conv G costs ~5x the ConvTranspose one per step, so the demo trains
# the DCGAN shape (ConvTranspose G, BatchNorm D, equal learning rates) at 64 px, long enough for
# dlib to find the face in its samples, and scores them once at the end (faces found, owner
# similarity, KID on dlib-128 embeddings). The library defaults (the modern recipe) are for GPUs.
DEMO_DCGAN_SHAPE = {"arch": "dcgan", "spectral_norm": False, "minibatch_std": False}
DEMO_GAN = {  # measured: 27/32 samples with a face, all 27 within 0.6 of the owner (benchmarks/gan_demo_faces.py)
    **DEMO_DCGAN_SHAPE, "resolution": 64, "lr_d": 2e-4, "diffaugment": "translation", "quality_every": 800, "quality_samples": 16,
    "run": {"steps": 800, "checkpoint_every": 200, "sample_every": 100, "log_every": 20},
}
DEMO_WGAN_GP = {
    **DEMO_DCGAN_SHAPE, "resolution": 32, "run": {"steps": 300, "checkpoint_every": 100, "sample_every": 100, "log_every": 20},
}


PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "demo": {
        # The demo album is many edits of one photo per person: perceptual-hash de-duplication
        # would rightly collapse it to a handful of crops, so the demo keeps byte-distinct crops.
        "curated_dataset": {"dedup": "none"},
        "gan_checkpoint": DEMO_GAN,
        "wgan_gp_checkpoint": DEMO_WGAN_GP,
    },
    "full": {
        "face_crops": {"crop_size": 512, "detector": {"kind": "retinaface"}},
        "curated_dataset": {"resolution": 128, "dedup": "phash"},
        "gan_checkpoint": FULL_GAN,
        "wgan_gp_checkpoint": FULL_WGAN_GP,
        "lora_weights": {  # SD-1.5 face LoRA, kohya/ai-toolkit-style; for SDXL set base_model + resolution 1024
            "base_model": "stable-diffusion-v1-5/stable-diffusion-v1-5",
            "resolution": 512,
            "rank": 16,
            "alpha": 16.0,
            "batch_size": 4,
            "learning_rate": 1e-4,
            "lr_scheduler": "cosine",
            "lr_warmup_steps": 100,
            "snr_gamma": 5.0,  # Min-SNR: faster, steadier convergence
            "noise_offset": 0.05,  # photos with dark backgrounds / bright skies
            "face_loss_strength": 0.5,  # the face counts double against the background
            "random_flip": True,  # captions swap left/right with the image
            "prior": {"num_images": 200, "loss_weight": 1.0},  # keep "person" from collapsing onto the owner
            "validation_prompts": ("photo of {trigger} {class_word}", "portrait of {trigger} {class_word} smiling, studio light",
                                   "photo of {trigger} {class_word} hiking in the mountains"),
            "validation_seeds": (0, 1),
            "validation_steps": 30,
            "run": {"steps": 1500, "mixed_precision": "bf16", "checkpoint_every": 250, "keep_every": 250, "sample_every": 250},
        },
        "sample_galleries": {"num_inference_steps": 30, "resolution": 512, "images_per_prompt": 8, "samples_per_model": 64,
                             "scheduler": "dpm++", "detect_side": 512},
    },
}


def active_profile() -> str:
    name = os.environ.get("FACECRAFT_PROFILE", "demo")
    if name not in PROFILES:
        raise ValueError(f"FACECRAFT_PROFILE={name!r} is not a profile: choose one of {sorted(PROFILES)}")
    return name


def overrides(asset: str, profile: str | None = None) -> dict[str, Any]:
    return dict(PROFILES[profile or active_profile()].get(asset, {}))
