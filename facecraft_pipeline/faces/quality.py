"""Which detected faces are good enough to train on, and if not, why -- every rejection has a reason.

Measures (recorded in the manifest, so later stages can be stricter without re-running detection):
- `face_px`: the side, in photo pixels, of the square region the aligned crop shows (crop size /
  alignment scale; about 3.2x the inter-ocular distance, independent of crop size and of how a
  detector draws its box). A crop is upsampled exactly when face_px < crop size, so a stage that
  trains at resolution R keeps only faces with face_px >= R and never trains on upsampled pixels.
- `sharpness`: variance of the Laplacian of the grey aligned crop, resampled to 112 px so one
  threshold serves every crop size (sharp faces measure in the hundreds; a 4 px blur ~20).
- `yaw_ratio`: how far the nose tip sits off the eyes' midline, as the ratio of the longer to the
  shorter horizontal eye-to-nose distance in the aligned crop (1 = frontal, ~2 = strongly turned,
  inf = the nose outside the eyes, a profile).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from facecraft_pipeline.faces.align import similarity_transform, transform_scale, warp_points
from facecraft_pipeline.faces.types import Face
from facecraft_pipeline.settings import setting, validate

REASONS = ("low-score", "too-small", "eyes-outside-box", "extreme-pose", "blurry")
_SHARPNESS_SIZE = 112


@dataclass(frozen=True)
class QualitySettings:
    """Thresholds for keeping a face; defaults are the demo's (tuned on dlib HOG + 68-point landmarks)."""

    min_face_px: int = setting(40, "reject faces whose aligned crop covers fewer photo pixels than this (see face_px)", minimum=1)
    min_score: float | None = setting(None, "reject (and record) faces scoring below this, on top of the detector's own floor; empty: none")
    min_sharpness: float = setting(40.0, "reject faces whose crop's variance of Laplacian (at 112 px) is below this", minimum=0)
    max_yaw_ratio: float = setting(3.0, "reject strongly turned faces: longer / shorter eye-to-nose distance above this (frontal ~1)", minimum=0)
    eyes_in_box: bool = setting(True, "reject faces whose eyes fall outside the detection box (their landmarks are guesses)")

    def __post_init__(self) -> None:
        validate(self)


@dataclass(frozen=True)
class QualityMeasures:
    """The numbers a decision is made from (see module doc)."""

    face_px: float
    sharpness: float
    yaw_ratio: float


def measure(face: Face, crop: np.ndarray) -> QualityMeasures:
    """Size, sharpness and pose of one face; `crop` is its aligned crop (square, any size)."""
    size = crop.shape[0]
    matrix = similarity_transform(face.landmarks, size)
    face_px = size / transform_scale(matrix)
    grey = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2GRAY)
    if size != _SHARPNESS_SIZE:
        interpolation = cv2.INTER_AREA if size > _SHARPNESS_SIZE else cv2.INTER_LINEAR
        grey = cv2.resize(grey, (_SHARPNESS_SIZE, _SHARPNESS_SIZE), interpolation=interpolation)
    sharpness = float(cv2.Laplacian(grey, cv2.CV_64F).var())
    left_eye, right_eye, nose = warp_points(face.landmarks[:3], matrix)
    to_left, to_right = nose[0] - left_eye[0], right_eye[0] - nose[0]
    shorter, longer = min(to_left, to_right), max(to_left, to_right)
    yaw_ratio = longer / shorter if shorter > 1e-6 else math.inf
    return QualityMeasures(face_px=float(face_px), sharpness=sharpness, yaw_ratio=float(yaw_ratio))


def judge(face: Face, measures: QualityMeasures, settings: QualitySettings) -> str | None:
    """None to keep the face, else the first reason (one of REASONS) it fails."""
    if settings.min_score is not None and face.score < settings.min_score:
        return "low-score"
    if measures.face_px < settings.min_face_px:
        return "too-small"
    if settings.eyes_in_box and not _eyes_in_box(face):
        return "eyes-outside-box"
    if measures.yaw_ratio > settings.max_yaw_ratio:
        return "extreme-pose"
    if measures.sharpness < settings.min_sharpness:
        return "blurry"
    return None


def assess(face: Face, crop: np.ndarray, settings: QualitySettings) -> str | None:
    """None = keep; else the reason this face is not dataset material."""
    return judge(face, measure(face, crop), settings)


def _eyes_in_box(face: Face) -> bool:
    x1, y1, x2, y2 = face.box
    eyes = face.landmarks[:2]
    return bool(np.all((eyes[:, 0] >= x1) & (eyes[:, 0] <= x2) & (eyes[:, 1] >= y1) & (eyes[:, 1] <= y2)))
