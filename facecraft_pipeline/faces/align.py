"""ArcFace-style alignment: one similarity transform puts the five landmarks on a fixed template.

Every crop in the dataset then has the eyes, nose and mouth at the same pixels, which is what a
GAN or LoRA needs to learn a face rather than framing. The template is scaled uniformly with the
output size (size / 112), so a 128 px and a 512 px crop show exactly the same region of the face at
two resolutions. (insightface's `estimate_norm` instead shifts the 112 template by 8 px for
128-based sizes, i.e. frames non-multiples of 112 differently; we do not.)
"""

from __future__ import annotations

import math

import cv2
import numpy as np

# Left eye, right eye, nose tip, mouth left, mouth right, for a 112x112 crop (insightface/ArcFace).
ARCFACE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)
ARCFACE_112.flags.writeable = False


def arcface_template(size: int) -> np.ndarray:
    """The five template points for a size x size crop (the 112 template scaled by size/112)."""
    if size < 16:
        raise ValueError(f"crop size {size} is too small for a face")
    return ARCFACE_112 * (size / 112.0)


def similarity_transform(landmarks: np.ndarray, size: int) -> np.ndarray:
    """2x3 matrix of the least-squares similarity (rotation, uniform scale, shift; no reflection)
    mapping the landmarks onto `arcface_template(size)` (Umeyama 1991, as skimage's SimilarityTransform)."""
    source = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
    target = arcface_template(size)
    if source.shape != target.shape:
        raise ValueError(f"expected 5 landmarks, got {source.shape}")
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    source_centred, target_centred = source - source_mean, target - target_mean
    source_variance = (source_centred**2).sum() / len(source)
    if source_variance < 1e-9:
        raise ValueError("landmarks are all at one point")
    covariance = target_centred.T @ source_centred / len(source)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.array([1.0, -1.0 if np.linalg.det(u) * np.linalg.det(vt) < 0 else 1.0])
    rotation = u @ np.diag(sign) @ vt
    scale = float((singular * sign).sum() / source_variance)
    shift = target_mean - scale * rotation @ source_mean
    return np.hstack([scale * rotation, shift[:, None]])


def transform_scale(matrix: np.ndarray) -> float:
    """Output pixels per photo pixel of a similarity matrix (> 1 means the crop is upsampled)."""
    return math.sqrt(abs(float(np.linalg.det(np.asarray(matrix)[:, :2]))))


def warp_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Points (N, 2) mapped by a 2x3 affine matrix."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return points @ np.asarray(matrix)[:, :2].T + np.asarray(matrix)[:, 2]


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int) -> np.ndarray:
    """The size x size aligned crop (uint8 RGB) of the face with these landmarks.

    Where the crop reaches past the photo's edge the border pixels are replicated (no black
    wedges for a generator to learn). Faces much larger than the crop are first shrunk with area
    averaging, so downsampling does not alias.
    """
    return warp_crop(image, similarity_transform(landmarks, size), size)


def warp_crop(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """`cv2.warpAffine` of the photo region the crop covers: same pixels as warping the whole photo."""
    matrix = np.asarray(matrix, dtype=np.float64)
    region, matrix = _covering_region(image, matrix, size)
    scale = transform_scale(matrix)
    if scale < 0.75:  # shrink to ~the output's sampling rate first; bilinear alone would alias
        height, width = region.shape[:2]
        new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
        region = cv2.resize(region, (new_w, new_h), interpolation=cv2.INTER_AREA)
        fx, fy = new_w / width, new_h / height
        # cv2.resize maps pixel centres: x_small = (x + 0.5) * f - 0.5, so x = (x_small + 0.5) / f - 0.5.
        linear = matrix[:, :2] @ np.diag([1.0 / fx, 1.0 / fy])
        shift = matrix[:, :2] @ np.array([0.5 / fx - 0.5, 0.5 / fy - 0.5]) + matrix[:, 2]
        matrix = np.hstack([linear, shift[:, None]])
    return cv2.warpAffine(region, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _covering_region(image: np.ndarray, matrix: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The part of the photo the crop samples (2 px margin), and the matrix re-based onto it."""
    height, width = image.shape[:2]
    inverse = cv2.invertAffineTransform(matrix)
    corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], dtype=np.float64)
    source = warp_points(corners, inverse)
    x0 = max(0, math.floor(source[:, 0].min()) - 2)
    y0 = max(0, math.floor(source[:, 1].min()) - 2)
    x1 = min(width, math.ceil(source[:, 0].max()) + 3)
    y1 = min(height, math.ceil(source[:, 1].max()) + 3)
    if x1 - x0 < 2 or y1 - y0 < 2:  # the crop lies (almost) wholly outside the photo
        return image, matrix
    rebased = matrix.copy()
    rebased[:, 2] += matrix[:, :2] @ np.array([x0, y0], dtype=np.float64)
    return image[y0:y1, x0:x1], rebased
