"""Named profiles: the only place where settings differ from the library defaults.

Library settings dataclasses hold the `demo` values (offline, CPU-friendly, the whole graph in
minutes). `full` is the production recipe: RetinaFace, real SD-1.5 weights, real training
lengths, a GPU. The Definitions are built for one (`definitions.build_definitions(profile, env)`; the
code location takes `FACECRAFT_PROFILE`); each field stays overridable per run from the Dagster launchpad
(asset config) or `facecraft materialize --set asset.field=value`.
"""

from __future__ import annotations

from typing import Any, TypeVar

from facecraft_pipeline.settings.fields import from_dict, to_dict

S = TypeVar("S")
DEFAULT_PROFILE = "demo"

FULL_GAN = {
    "resolution": 128, "batch_size": 64, "base_channels": 64, "latent_dim": 128, "attention_res": 32, "r1_gamma": 1.0,
    "ada": {"target": 0.6}, "quality_every": 1000, "quality_samples": 128, "channels_last": True,
    "controls": "yaw,pitch,roll,mouth_open,eyes_open,brightness",  # AC-GAN: the explorer's attribute sliders
    "run": {"steps": 20_000, "mixed_precision": "bf16", "checkpoint_every": 1000, "sample_every": 1000, "keep_every": 5000},
}
FULL_WGAN_GP = {**FULL_GAN, "spectral_norm": False, "r1_gamma": 0.0}  # the reference critic: LayerNorm + gradient penalty

# GAN exception to "library defaults are the demo": GanSettings' defaults are the modern recipe (what a GPU
# should train); the demo's CPU recipe is written here, chosen by measuring on a real photo library
# (../shared/data/real-library: 11 distinct training photos of the owner) and on the demo album, with faces
# counted by the pipeline's probe and the owner judged by dlib directly (benchmarks/gan_real_library.py;
# every recipe tried is in BENCHMARKS.md):
# - the DCGAN shape (ConvTranspose G, BatchNorm D) costs ~1/5 of the Upsample+conv G per step on a CPU;
# - 64 px with minibatch std in D, 2,000 steps: 16/16 faces, 16/16 the owner, diversity 0.35 on the real
#   library. Without minibatch std the samples cluster (diversity 0.31-0.33, the owner's own crops: 0.28);
#   at 32 px the real library passes but the demo album's samples are too small for the gallery's detector;
# - identity conditioning on the whole library reached 9-11/16 owner in the same budget: kept as an option
#   (`condition: identity`), not the CPU demo's recipe.
# Checkpoints every 500 steps are kept for the sweep, which picks the champion.
DEMO_DCGAN_SHAPE = {"arch": "dcgan", "spectral_norm": False, "minibatch_std": False}
DEMO_RUN = {"checkpoint_every": 500, "keep_every": 500, "sample_every": 100, "log_every": 20}
DEMO_GAN = {
    **DEMO_DCGAN_SHAPE, "minibatch_std": True, "resolution": 64, "lr_d": 2e-4, "diffaugment": "translation",
    "quality_every": 500, "quality_samples": 16, "run": {"steps": 2000, **DEMO_RUN},
}
DEMO_WGAN_GP = {  # 32 px (a critic step with its gradient penalty costs ~4 DCGAN steps), n_critic 5, the critic's Adam at
    # 4e-4 (TTUR; G's 2e-4), the penalty on 4 interpolates a critic step (31% less time a step), 2,000 steps: 13/16
    # faces, 12/16 the owner on the real library with either of two seeds. At the critic's former 1e-4 it took 2,500
    # steps (and 25% more time a step) to reach 12/16 and 11/16; with the penalty on the whole batch: 13/16 and 14/16
    # with one seed, 12/16 and 8/16 with the other
    **DEMO_DCGAN_SHAPE, "resolution": 32, "lr_d": 4e-4, "gp_batch": 4, "diffaugment": "translation", "quality_every": 500,
    "quality_samples": 16, "run": {"steps": 2000, **DEMO_RUN},
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


def check_profile(name: str) -> str:
    if name not in PROFILES:
        raise ValueError(f"FACECRAFT_PROFILE={name!r} is not a profile: choose one of {sorted(PROFILES)}")
    return name


# Assets whose settings must equal another asset's, so a profile sets them once: face_shards fills the cache that
# face_crops reads, keyed by these settings.
SETTINGS_OF = {"face_shards": "face_crops"}


def overrides(asset: str, profile: str) -> dict[str, Any]:
    """What `profile` changes in `asset`'s settings (nested sections as dicts)."""
    return dict(PROFILES[check_profile(profile)].get(SETTINGS_OF.get(asset, asset), {}))


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def profile_settings(settings_cls: type[S], asset: str, profile: str, **fixed: Any) -> S:
    """`asset`'s settings under `profile`, without Dagster (a library test or a benchmark training as `make demo` does)."""
    return from_dict(settings_cls, {**_merge(to_dict(settings_cls()), overrides(asset, profile)), **fixed})
