"""The one image loader of every trainer: EXIF-upright RGB, centre-cropped square, LANCZOS to size.

A curated set is small, so it lives in memory as one uint8 tensor (10k faces at 256 px ~2 GB);
batches become float on the device.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps


def load_images(paths: Sequence[Path], resolution: int) -> torch.Tensor:
    """uint8 (N, 3, R, R). Raises ValueError on an empty list."""
    if not paths:
        raise ValueError("no training images given")
    return torch.from_numpy(np.stack([square_image(Path(p), resolution) for p in paths])).permute(0, 3, 1, 2).contiguous()


def square_image(path: Path, resolution: int) -> np.ndarray:
    with Image.open(path) as image:
        upright = ImageOps.exif_transpose(image).convert("RGB")
    return np.asarray(ImageOps.fit(upright, (resolution, resolution), Image.Resampling.LANCZOS), dtype=np.uint8)


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1] (tanh's range, and the VAE's)."""
    return images.float() / 127.5 - 1.0


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """float [-1, 1] (N, 3, H, W) -> uint8 (N, H, W, 3) for PIL."""
    scaled = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return scaled.permute(0, 2, 3, 1).cpu().numpy()
