"""Crops and CurationItems for the dataset tests: real faces from the identity fixtures, and
synthetic stand-ins (smooth random colour fields, every one perceptually distinct) where a test
needs many different crops."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image

from facecraft_pipeline.dataset.curate import CurationItem
from facecraft_pipeline.sources.base import sha256_file
from facecraft_pipeline_tests.faces.identity_fixtures import VARIATIONS, identity_crops, save_png


def item(path: Path, photo_id: str, identity_distance: float | None = 0.1) -> CurationItem:
    return CurationItem(
        crop_path=path,
        crop_sha256=sha256_file(path),
        photo_id=photo_id,
        photo_sha256=hashlib.sha256(photo_id.encode()).hexdigest(),
        box=(10.0, 20.0, 110.0, 130.0),
        landmarks=((40.0, 60.0), (80.0, 60.0), (60.0, 80.0), (45.0, 100.0), (75.0, 100.0)),
        identity_distance=identity_distance,
    )


def distinct_image(seed: int, size: int = 112) -> np.ndarray:
    coarse = np.random.default_rng(seed).integers(0, 256, (6, 6, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC))


def distinct_items(folder: Path, count: int, size: int = 112, first_seed: int = 0) -> list[CurationItem]:
    """`count` crops from `count` different photos, none a near duplicate of another."""
    return [
        item(save_png(distinct_image(seed, size), folder / f"crop-{seed}.png"), f"photo-{seed}")
        for seed in range(first_seed, first_seed + count)
    ]


def face_items(folder: Path, size: int = 112) -> list[CurationItem]:
    """Both people's variation crops, one photo each; the originals look most like the owner."""
    crops = identity_crops(size)
    return [
        item(save_png(crops[p][v], folder / f"{p}-{v}.png"), f"{p}/{v}.jpg", 0.05 if v == "original" else 0.2)
        for p in ("grace", "astronaut")
        for v in VARIATIONS
    ]
