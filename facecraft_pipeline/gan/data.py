"""Face crops in memory: a curated set is small, so one uint8 tensor beats a DataLoader.

At 256 px, 10k faces are ~2 GB as uint8; batches are converted to float on the device.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps


def load_images(paths: Sequence[Path], resolution: int) -> torch.Tensor:
    """Read images as RGB, centre-crop to square, resize to `resolution`: uint8 (N, 3, R, R)."""
    if not paths:
        raise ValueError("no training images given")
    arrays = []
    for path in paths:
        with Image.open(path) as image:
            square = ImageOps.fit(image.convert("RGB"), (resolution, resolution), Image.Resampling.LANCZOS)
            arrays.append(np.asarray(square, dtype=np.uint8))
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1], the range of G's tanh."""
    return images.float() / 127.5 - 1.0


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """float [-1, 1] (N, 3, H, W) -> uint8 (N, H, W, 3) for PIL."""
    scaled = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return scaled.permute(0, 2, 3, 1).cpu().numpy()


def dataset_digest(paths: Sequence[Path]) -> str:
    """sha256 over the files' bytes in the given order: what a checkpoint was trained on."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(hashlib.sha256(Path(path).read_bytes()).digest())
    return digest.hexdigest()
