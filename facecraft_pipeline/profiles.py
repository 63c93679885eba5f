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
    "resolution": 128, "batch_size": 64, "base_channels": 64, "latent_dim": 128,
    "run": {"steps": 20_000, "mixed_precision": "bf16", "checkpoint_every": 1000, "sample_every": 1000, "keep_every": 5000},
}

PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "demo": {
        # The demo album is many edits of one photo per person: perceptual-hash de-duplication
        # would rightly collapse it to a handful of crops, so the demo keeps byte-distinct crops.
        "curated_dataset": {"dedup": "none"},
    },
    "full": {
        "face_crops": {"crop_size": 512, "detector": {"kind": "retinaface"}},
        "curated_dataset": {"resolution": 128, "dedup": "phash"},
        "gan_checkpoint": FULL_GAN,
        "wgan_gp_checkpoint": FULL_GAN,
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
