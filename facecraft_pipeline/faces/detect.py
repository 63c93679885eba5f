"""Face detection behind one batched interface, so the pipeline can swap dlib for RetinaFace by config.

`make_detector` is the only entry point: the demo profile runs dlib's HOG detector (offline, CPU,
models shipped in a pip package), the full profile runs RetinaFace (ResNet-50) on a GPU. Both
return `Face`s in the coordinates of the photo they were given, whatever size they detected at.
Settings live in `detector_settings.py` and pixel geometry in `geometry.py` (re-exported here), so
the detector modules import neither this module nor each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

from facecraft_pipeline.faces.detector_settings import DEFAULT_MIN_SCORE, DETECTOR_KINDS, DLIB_MODELS, DetectorSettings
from facecraft_pipeline.faces.geometry import clip_box, downscale
from facecraft_pipeline.faces.types import Face

if TYPE_CHECKING:
    import torch


class FaceDetector(Protocol):
    """Finds faces in a batch of HxWx3 uint8 RGB photos; one list of `Face`s per photo, best first."""

    name: str

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]: ...


def make_detector(settings: DetectorSettings, device: str | torch.device = "cpu") -> FaceDetector:
    """The detector the settings ask for, with its models loaded (no download unless allowed)."""
    if settings.kind == "dlib":
        from facecraft_pipeline.faces.dlib_detector import DlibDetector

        return DlibDetector(settings)
    from facecraft_pipeline.faces.retinaface_detector import RetinaFaceDetector

    return RetinaFaceDetector(settings, device)


__all__ = ["DEFAULT_MIN_SCORE", "DETECTOR_KINDS", "DLIB_MODELS", "DetectorSettings", "FaceDetector", "clip_box", "downscale", "make_detector"]
