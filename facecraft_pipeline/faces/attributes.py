"""Face attributes measured offline from an aligned crop: the control vector of a conditional GAN.

dlib's 68-point landmarks are fitted on the ArcFace-aligned crop (in the box where a frontal face
sits in that frame), and each attribute is mapped to [-1, 1] by fixed, documented ranges, so the
same crop always gives the same vector and a slider at -1 / +1 means the same on every dataset:

  yaw         nose tip left/right of the eyes' midpoint, in half inter-ocular distances (+: towards image right)
  pitch       nose tip height between the eye line and the mouth line (0.55 of the way is 0; +: looking down)
  roll        angle of the eye line, / 30 degrees (alignment keeps it near 0; kept for unaligned crops)
  mouth_open  inner-lip gap / mouth width, 0 -> -1, 0.3 and more -> +1
  eyes_open   eye aspect ratio (Soukupova & Cech 2016), 0.1 -> -1, 0.3 -> +1
  brightness  mean luma of the face box, 0 -> -1, 255 -> +1

Under a horizontal flip yaw and roll change sign (`FLIP_SIGNS`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

ATTRIBUTE_NAMES = ("yaw", "pitch", "roll", "mouth_open", "eyes_open", "brightness")
FLIP_SIGNS = {"yaw": -1.0, "roll": -1.0}
FACE_BOX_IN_ARCFACE = (0.12, 0.20, 0.88, 0.95)  # where dlib's frontal detector box lies in an ArcFace crop (as embed.py)


def landmarks_68(crop: np.ndarray) -> np.ndarray:
    """(68, 2) float landmarks of the face in an aligned RGB uint8 crop."""
    import dlib

    from facecraft_pipeline.faces.model_files import SHAPE_68, shape_predictor

    crop = np.ascontiguousarray(crop, dtype=np.uint8)
    if crop.ndim != 3 or crop.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 RGB crop, got shape {crop.shape}")
    h, w = crop.shape[:2]
    left, top, right, bottom = FACE_BOX_IN_ARCFACE
    shape = shape_predictor(SHAPE_68)(crop, dlib.rectangle(round(left * w), round(top * h), round(right * w), round(bottom * h)))
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)


def attributes_from_landmarks(points: np.ndarray, crop: np.ndarray) -> dict[str, float]:
    """The attribute vector (see the module doc) from 68 landmarks and the crop's pixels."""
    left_eye, right_eye = points[36:42], points[42:48]
    eye_l, eye_r = left_eye.mean(0), right_eye.mean(0)
    eyes_mid = (eye_l + eye_r) / 2
    inter = max(float(np.linalg.norm(eye_r - eye_l)), 1e-6)
    nose = points[30]
    mouth_mid = (points[48] + points[54]) / 2
    down = max(float(mouth_mid[1] - eyes_mid[1]), 1e-6)
    mouth_width = max(float(np.linalg.norm(points[54] - points[48])), 1e-6)

    def ear(eye: np.ndarray) -> float:
        return float((np.linalg.norm(eye[1] - eye[5]) + np.linalg.norm(eye[2] - eye[4])) / (2 * max(np.linalg.norm(eye[0] - eye[3]), 1e-6)))

    x0, y0 = np.clip(points.min(0), 0, None).astype(int)
    x1, y1 = (points.max(0) + 1).astype(int)
    luma = crop[y0:y1, x0:x1].astype(np.float64) @ np.array([0.299, 0.587, 0.114]) if crop[y0:y1, x0:x1].size else np.zeros(1)
    raw = {
        "yaw": (nose[0] - eyes_mid[0]) / (inter / 2),
        "pitch": ((nose[1] - eyes_mid[1]) / down - 0.55) / 0.25,
        "roll": np.degrees(np.arctan2(eye_r[1] - eye_l[1], eye_r[0] - eye_l[0])) / 30.0,
        "mouth_open": float(np.linalg.norm(points[66] - points[62])) / mouth_width / 0.3 * 2 - 1,
        "eyes_open": ((ear(left_eye) + ear(right_eye)) / 2 - 0.2) / 0.1,
        "brightness": float(luma.mean()) / 127.5 - 1,
    }
    return {name: round(float(np.clip(raw[name], -1.0, 1.0)), 4) for name in ATTRIBUTE_NAMES}


def face_attributes(crop: np.ndarray) -> dict[str, float]:
    """Attributes of one aligned RGB uint8 crop (what the curated dataset's manifest records per image)."""
    crop = np.asarray(crop)
    return attributes_from_landmarks(landmarks_68(crop), crop)


def attribute_matrix(records: Sequence[Mapping[str, Any]], names: Sequence[str]) -> np.ndarray:
    """(len(records), len(names)) float32 of the manifest records' `attributes`; a clear error if absent."""
    missing = [r.get("file", "?") for r in records if not all(n in (r.get("attributes") or {}) for n in names)]
    if missing:
        raise ValueError(f"{len(missing)} dataset images have no attributes {list(names)} (e.g. {missing[0]}): "
                         f"re-curate the dataset with this version, or clear the controls setting")
    return np.array([[float(r["attributes"][n]) for n in names] for r in records], dtype=np.float32)
