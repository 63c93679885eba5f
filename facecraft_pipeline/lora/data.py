"""Training images as the VAE wants them: square, `resolution` px, RGB in [-1, 1]."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps


def load_training_images(paths: Sequence[Path], resolution: int) -> torch.Tensor:
    """(N, 3, resolution, resolution) float32 in [-1, 1]: EXIF-upright, shorter side resized, centre-cropped."""
    if not paths:
        raise ValueError("LoRA training needs at least one image")
    return torch.stack([_to_tensor(_square(Path(path), resolution)) for path in paths])


def file_digest(path: Path) -> str:
    """sha256 of the file's bytes: the run fingerprint changes when any training image does."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _square(path: Path, resolution: int) -> Image.Image:
    with Image.open(path) as image:
        image = ImageOps.exif_transpose(image).convert("RGB")
    return ImageOps.fit(image, (resolution, resolution), Image.Resampling.BICUBIC, centering=(0.5, 0.5))


def _to_tensor(image: Image.Image) -> torch.Tensor:
    array = np.asarray(image, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()
