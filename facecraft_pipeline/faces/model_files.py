"""Where dlib's model files live: inside the `face-recognition-models` package, found without importing it.

Importing `face_recognition_models` pulls in `pkg_resources`, which setuptools>=82 removed and
older versions warn about; `importlib.util.find_spec` locates the folder without running it.
Loaded models are cached per process: the 68-point predictor takes ~0.7 s to read.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import dlib

SHAPE_68 = "shape_predictor_68_face_landmarks.dat"
SHAPE_5 = "shape_predictor_5_face_landmarks.dat"
MMOD_DETECTOR = "mmod_human_face_detector.dat"
RESNET_EMBEDDING = "dlib_face_recognition_resnet_model_v1.dat"


def dlib_model_path(name: str) -> Path:
    """Absolute path of one model file shipped in face-recognition-models; a clear error if absent."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the face-recognition-models package is not installed (pip install face-recognition-models)")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / name
    if not path.is_file():
        raise FileNotFoundError(f"dlib model file missing: {path}")
    return path


@lru_cache(maxsize=4)
def shape_predictor(name: str = SHAPE_68) -> dlib.shape_predictor:
    """A loaded landmark model (read-only after loading, so one instance serves every thread)."""
    return dlib.shape_predictor(str(dlib_model_path(name)))


@lru_cache(maxsize=1)
def cnn_face_detector() -> dlib.cnn_face_detection_model_v1:
    """dlib's CNN (mmod) face detector: better on pose than HOG, seconds per photo on CPU."""
    return dlib.cnn_face_detection_model_v1(str(dlib_model_path(MMOD_DETECTOR)))
