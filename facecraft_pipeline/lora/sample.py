"""Sampling from a base model with trained LoRA weights, reproducible to the pixel per seed."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch
from PIL import Image

from facecraft_pipeline.lora.base_model import BaseModel, load_pipeline

if TYPE_CHECKING:
    from diffusers import StableDiffusionPipeline


def load_lora_pipeline(
    base: BaseModel, weights_dir: Path, device: torch.device | str = "cpu"
) -> StableDiffusionPipeline:
    """The base pipeline with the LoRA in weights_dir loaded and active."""
    pipe = load_pipeline(base, device)
    pipe.load_lora_weights(str(weights_dir))
    return pipe


def generate(
    pipe: StableDiffusionPipeline,
    prompt: str,
    n: int,
    seed: int,
    steps: int = 10,
    guidance_scale: float = 5.0,
    resolution: int | None = None,
    batch_size: int = 8,
) -> list[Image.Image]:
    """n images at `resolution` px (default: the model's native size); same arguments -> identical pixels.

    Image i starts from the CPU noise of seed + i, so a gallery's images keep their starting
    noise whatever n, batch_size or device is.
    """
    if n < 1:
        return []
    size = resolution or pipe.unet.config.sample_size * pipe.vae_scale_factor
    images: list[Image.Image] = []
    for first in range(0, n, batch_size):
        count = min(batch_size, n - first)
        generators = [
            torch.Generator().manual_seed(seed + first + i) for i in range(count)
        ]  # CPU noise: same on any device
        output = pipe(
            [prompt] * count,
            num_inference_steps=steps,
            guidance_scale=guidance_scale,
            height=size,
            width=size,
            generator=generators,
        )
        images.extend(output.images)
    return images
