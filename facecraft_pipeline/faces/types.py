"""The one shape every detector returns, so alignment and quality never care which detector ran."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Face:
    """A detected face in image pixel coordinates of the photo it was found in.

    `box` is (x1, y1, x2, y2), clipped to the image. `score` is the detector's own confidence (its
    scale depends on the detector: dlib HOG/mmod margins, RetinaFace probabilities). `landmarks` is
    (5, 2) float32 in ArcFace order: left eye (the eye on the image's left), right eye, nose tip,
    mouth left, mouth right.
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray

    def __post_init__(self) -> None:
        points = np.asarray(self.landmarks, dtype=np.float32).reshape(5, 2)
        points.flags.writeable = False
        object.__setattr__(self, "landmarks", points)
        object.__setattr__(self, "box", tuple(float(v) for v in self.box))
        object.__setattr__(self, "score", float(self.score))

    @property
    def eye_distance(self) -> float:
        """Inter-ocular distance in pixels: the face's scale, independent of how the detector boxes it."""
        return float(np.linalg.norm(self.landmarks[1] - self.landmarks[0]))
