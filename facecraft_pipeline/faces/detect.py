"""Face detection behind one batched interface, so the pipeline can swap dlib for RetinaFace by config.

`make_detector` is the only entry point: the demo profile runs dlib's HOG detector (offline, CPU,
models shipped in a pip package), the full profile runs RetinaFace (ResNet-50) on a GPU. Both
return `Face`s in the coordinates of the photo they were given, whatever size they detected at.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import cv2
import numpy as np

from facecraft_pipeline.faces.types import Face

if TYPE_CHECKING:
    import torch

DETECTOR_KINDS = ("dlib", "retinaface")
DLIB_MODELS = ("hog", "cnn")

# Score floors when `min_score` is None. The scales differ per detector: HOG and mmod return SVM
# margins, RetinaFace a softmax probability (0.7 is the package's own default). HOG on the demo album
# and the benchmark photos: real faces 0.43-1.5 (tilted, blurred, dim ones lowest), false positives
# 0.1-0.37 (a mission patch on a space suit at 0.30 and 0.37), hence 0.4.
DEFAULT_MIN_SCORE = {"hog": 0.4, "cnn": 0.5, "retinaface": 0.7}


@dataclass(frozen=True)
class DetectorSettings:
    """Which detector, and how hard it looks. Defaults are the offline demo's."""

    kind: str = "dlib"  # "dlib" | "retinaface"
    dlib_model: str = "hog"  # "hog" (fast) | "cnn" (mmod: better on pose, seconds per photo on CPU)
    upsample: int = 1  # dlib: times to double the detection image (finds faces down to ~40 px instead of ~80)
    min_score: float | None = None  # None: DEFAULT_MIN_SCORE for the detector in use
    retinaface_weights: str | None = None  # local file or URL; None: the hub cache, then the release URL
    retinaface_max_size: int = 1024  # RetinaFace resizes the longest side to this (as its package does)
    retinaface_download: bool = True  # may the release weights be downloaded when not cached
    batch_size: int = 8  # images per forward pass (RetinaFace) / per thread-pool round (dlib)
    max_side: int = 1600  # dlib: photos larger than this are downscaled for detection only
    workers: int = 0  # dlib: detection threads (one HOG detector each); 0 = one per CPU core

    @property
    def score_floor(self) -> float:
        """The effective score threshold."""
        if self.min_score is not None:
            return self.min_score
        return DEFAULT_MIN_SCORE["retinaface" if self.kind == "retinaface" else self.dlib_model]

    def validate(self) -> None:
        """Fail early, with the allowed values, on a typo in run config."""
        if self.kind not in DETECTOR_KINDS:
            raise ValueError(f"detector kind {self.kind!r} is not one of {DETECTOR_KINDS}")
        if self.dlib_model not in DLIB_MODELS:
            raise ValueError(f"dlib_model {self.dlib_model!r} is not one of {DLIB_MODELS}")
        if self.upsample < 0 or self.batch_size < 1 or self.max_side < 64 or self.retinaface_max_size < 32:
            raise ValueError(f"detector sizes out of range: {self}")


class FaceDetector(Protocol):
    """Finds faces in a batch of HxWx3 uint8 RGB photos; one list of `Face`s per photo, best first."""

    name: str

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]: ...


def make_detector(settings: DetectorSettings, device: str | torch.device = "cpu") -> FaceDetector:
    """The detector the settings ask for, with its models loaded (no download unless allowed)."""
    settings.validate()
    if settings.kind == "dlib":
        from facecraft_pipeline.faces.dlib_detector import DlibDetector

        return DlibDetector(settings)
    from facecraft_pipeline.faces.retinaface_detector import RetinaFaceDetector

    return RetinaFaceDetector(settings, device)


def downscale(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float, float]:
    """The image shrunk so its longest side is at most `max_side`, and the x and y factors applied.

    Per-axis factors because sizes round to whole pixels: mapping back with one factor would be
    off by ~2 px at the far edge of a 6000 px photo.
    """
    height, width = image.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale >= 1.0:
        return image, 1.0, 1.0
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), size[0] / width, size[1] / height


def clip_box(box: Sequence[float], width: int, height: int) -> tuple[float, float, float, float]:
    """(x1, y1, x2, y2) limited to the image rectangle [0, width] x [0, height]."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return (min(max(x1, 0.0), width), min(max(y1, 0.0), height), min(max(x2, 0.0), width), min(max(y2, 0.0), height))
