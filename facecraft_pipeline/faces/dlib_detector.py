"""dlib's detectors (HOG or CNN/mmod) plus its 68-point landmarks, reduced to ArcFace's five points.

Why 68 points and not dlib's 5-point model: the 5-point model gives eye corners and the bottom of
the nose, which do not correspond to ArcFace's nose tip and mouth corners (mapping them zooms the
crop out ~15%); eye centres (36-41, 42-47), nose tip (30) and mouth corners (48, 54) of the 68-point
model land within ~1-7 px of the template at 112 px.

Detection runs on a copy downscaled to `max_side`; landmarks are fitted on the full-resolution
photo inside the box mapped back, so they keep full precision. dlib releases the GIL but a detector
object is not thread-safe (shared, it returns garbage), so each worker thread checks out its own
HOG detector from a process-wide pool; the landmark model is read-only and shared. The CNN detector runs
on one thread.
"""

from __future__ import annotations

import os
import queue
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import dlib
import numpy as np

from facecraft_pipeline.faces.detector_settings import DetectorSettings
from facecraft_pipeline.faces.geometry import clip_box, downscale
from facecraft_pipeline.faces.model_files import SHAPE_68, cnn_face_detector, dlib_model_path, shape_predictor
from facecraft_pipeline.faces.types import Face

# 68-point indices (iBUG 300-W): 36-41 the eye on the image's left, 42-47 the other eye,
# 30 the nose tip, 48/54 the mouth corners on the image's left/right.
_LEFT_EYE = slice(36, 42)
_RIGHT_EYE = slice(42, 48)
_NOSE_TIP, _MOUTH_LEFT, _MOUTH_RIGHT = 30, 48, 54

# HOG detectors take ~0.3 s to build and must not be shared between threads: a process-wide pool
# lends one to each running detection and takes it back, so a process builds at most one per thread.
_IDLE_HOG: queue.SimpleQueue[dlib.fhog_object_detector] = queue.SimpleQueue()


class DlibDetector:
    """`FaceDetector` over dlib HOG or mmod; batches are spread over worker threads (HOG only)."""

    def __init__(self, settings: DetectorSettings) -> None:
        self.settings = settings
        self.name = f"dlib-{settings.dlib_model}"
        self._floor = settings.score_floor
        dlib_model_path(SHAPE_68)  # missing: an error now, not a failure per photo; read at the first face (0.4 s a process)
        self._cnn = cnn_face_detector() if settings.dlib_model == "cnn" else None
        self._workers = 1 if self._cnn is not None else (settings.workers or os.cpu_count() or 1)

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        arrays = [np.ascontiguousarray(image, dtype=np.uint8) for image in images]
        workers = min(self._workers, len(arrays))
        if workers <= 1:
            return [self._detect_one(image) for image in arrays]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dlib-detect") as pool:
            return list(pool.map(self._detect_one, arrays))

    def _detect_one(self, image: np.ndarray) -> list[Face]:
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an HxWx3 RGB image, got shape {image.shape}")
        small, sx, sy = downscale(image, self.settings.max_side)
        height, width = image.shape[:2]
        faces = []
        for (left, top, right, bottom), score in self._boxes(small):
            box = clip_box((left / sx, top / sy, right / sx, bottom / sy), width, height)
            if box[2] - box[0] < 1 or box[3] - box[1] < 1:
                continue
            rect = dlib.rectangle(round(left / sx), round(top / sy), round(right / sx), round(bottom / sy))
            faces.append(Face(box=box, score=score, landmarks=self._five_points(image, rect)))
        return sorted(faces, key=lambda face: -face.score)

    def _boxes(self, small: np.ndarray) -> list[tuple[tuple[int, int, int, int], float]]:
        """Raw detections above the score floor in the downscaled image's pixels."""
        upsample = self.settings.upsample
        if self._cnn is not None:
            found = self._cnn(small, upsample)
            return [((d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()), d.confidence) for d in found if d.confidence >= self._floor]
        try:
            hog = _IDLE_HOG.get_nowait()
        except queue.Empty:
            hog = dlib.get_frontal_face_detector()
        try:
            rects, scores, _ = hog.run(small, upsample, self._floor)
        finally:
            _IDLE_HOG.put(hog)
        return [((r.left(), r.top(), r.right(), r.bottom()), float(s)) for r, s in zip(rects, scores) if s >= self._floor]

    def _five_points(self, image: np.ndarray, rect: dlib.rectangle) -> np.ndarray:
        shape = shape_predictor(SHAPE_68)(image, rect)
        points = np.array([(part.x, part.y) for part in shape.parts()], dtype=np.float32)
        return np.stack(
            [points[_LEFT_EYE].mean(axis=0), points[_RIGHT_EYE].mean(axis=0), points[_NOSE_TIP], points[_MOUTH_LEFT], points[_MOUTH_RIGHT]]
        )
