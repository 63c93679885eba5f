"""Pixel geometry shared by the detectors: downscaling for detection and clipping boxes to a photo.

Only numpy and OpenCV: every faces/ module may import it without pulling in a detector.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np


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
