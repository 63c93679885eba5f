"""What the evaluation sweep renders and how it judges: declared once, with help, for the launchpad."""

from __future__ import annotations

from dataclasses import dataclass

from facecraft_pipeline.faces.probe import DETECT_SIDE
from facecraft_pipeline.settings import setting, validate

SAMPLING_SCHEDULERS = ("default", "ddim", "euler", "euler_a", "dpm++", "pndm")
INSTANCE = "{instance}"  # replaced by the LoRA's trained instance prompt


@dataclass(frozen=True)
class GallerySettings:
    """The sweep: every kept checkpoint of every model, the same seeds (and prompts) for each."""

    samples_per_model: int = setting(16, "GANs: images per checkpoint (latents from `seed`, the same for every checkpoint)", minimum=1)
    images_per_prompt: int = setting(4, "diffusion: images per prompt per checkpoint (noise seeds seed, seed+1, ...)", minimum=1)
    seed: int = setting(1234, "seed of the first image; image i uses seed + i for every checkpoint")
    prompts: tuple[str, ...] = setting(
        (INSTANCE, INSTANCE + ", close-up portrait, looking at the camera", INSTANCE + ", smiling, outdoors"),
        "diffusion: the prompts every checkpoint draws; {instance} is the LoRA's instance prompt")
    negative_prompt: str = setting("", "diffusion: negative prompt (empty: none)")
    guidance_scale: float | None = setting(None, "diffusion: guidance scale; empty: the base model family's (5.0 SD/SDXL, "
                                                 "3.5 FLUX.1, 0 Z-Image-Turbo)", minimum=0)
    num_inference_steps: int | None = setting(None, "diffusion: sampling steps; empty: the family's (10 SD/SDXL, 28 FLUX.1, "
                                                    "9 Z-Image-Turbo)", minimum=1)
    scheduler: str = setting("default", "diffusion sampler: default (the base model's), ddim, euler, euler_a, dpm++ or pndm",
                             choices=SAMPLING_SCHEDULERS)
    resolution: int | None = setting(None, "diffusion: image side in px; empty: the resolution the LoRA was trained at", minimum=8)
    detect_side: int = setting(DETECT_SIDE, "generated images smaller than this are upscaled (Lanczos) to it before face detection",
                               minimum=32)
    min_face_share: float = setting(0.5, "champion rule: a checkpoint must show a detectable face in at least this share of its images",
                                    minimum=0, maximum=1)
    min_diversity: float = setting(0.02, "champion rule: mean pairwise embedding distance below this means one face drawn every "
                                   "time (mode collapse): not eligible", minimum=0)
    tie_margin: float = setting(0.005, "champion rule: identity scores this close to the best count as a tie, broken by diversity",
                                minimum=0)
    detector: str | None = setting(None, "face detector override (dlib or retinaface); empty: the detector face_crops recorded",
                                   choices=("dlib", "retinaface"))
    detector_min_score: float | None = setting(None, "detector score floor override; empty: the one face_crops recorded")

    def __post_init__(self) -> None:
        validate(self)
        if not self.prompts:
            raise ValueError("GallerySettings.prompts needs at least one prompt")

    def resolved_prompts(self, instance_prompt: str) -> tuple[str, ...]:
        return tuple(p.replace(INSTANCE, instance_prompt) for p in self.prompts)
