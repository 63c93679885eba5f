"""DreamBooth prior preservation: class images drawn by the base model once, then cached.

The cache folder is keyed by (base model, class prompt, resolution, sampling steps, guidance, first
seed); image i is drawn from seed + i, so asking for more images later only draws the new ones,
and every run with the same key reads the same files.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from facecraft_pipeline.atomic import atomic_path, write_json_atomic
from facecraft_pipeline.lora.base_model import BaseModel
from facecraft_pipeline.lora.sample import generate
from facecraft_pipeline.lora.settings import LoraSettings


def class_images_folder(base: BaseModel, settings: LoraSettings, cache_dir: Path) -> Path:
    prior = settings.prior
    key = {"base_model": [base.spec, base.location, base.family], "prompt": settings.class_prompt,
           "resolution": settings.resolution, "steps": prior.inference_steps, "guidance": prior.guidance_scale, "seed": prior.seed}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    folder = Path(cache_dir) / "class_images" / digest
    if not (folder / "key.json").is_file():
        write_json_atomic(folder / "key.json", key, indent=1)
    return folder


def class_images(pipe, base: BaseModel, settings: LoraSettings, cache_dir: Path) -> list[Path]:
    """The `settings.prior.num_images` class images, drawing (with `pipe`, before any LoRA) only missing ones."""
    prior = settings.prior
    folder = class_images_folder(base, settings, cache_dir)
    paths = [folder / f"class-{prior.seed + i:06d}.png" for i in range(prior.num_images)]
    for i, path in enumerate(paths):
        if path.is_file():
            continue
        image = generate(pipe, settings.class_prompt, n=1, seed=prior.seed + i, steps=prior.inference_steps,
                         guidance_scale=prior.guidance_scale, resolution=settings.resolution)[0]
        with atomic_path(path) as tmp:
            image.save(tmp, format="PNG")
    return paths
