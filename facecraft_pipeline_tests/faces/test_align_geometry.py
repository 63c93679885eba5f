"""Alignment puts the five landmarks on the ArcFace template, at any crop size, for any pose of the photo."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from skimage.transform import SimilarityTransform

from facecraft_pipeline.faces.align import (
    ARCFACE_112,
    align_face,
    arcface_template,
    similarity_transform,
    transform_scale,
    warp_crop,
    warp_points,
)
from facecraft_pipeline.faces.detect import DetectorSettings, FaceDetector, make_detector
from facecraft_pipeline_tests.faces.face_samples import astronaut, grace_hopper


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return make_detector(DetectorSettings(workers=1))


def _similarity(scale: float, degrees: float, shift: tuple[float, float]) -> np.ndarray:
    angle = math.radians(degrees)
    rotation = scale * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    return np.hstack([rotation, np.array(shift, dtype=float)[:, None]])


def _blob_image(points: np.ndarray, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Bright Gaussian dots centred (sub-pixel) on the points, on black: landmarks we can see in a crop."""
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    image = np.zeros(shape)
    for x, y in points:
        image += np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2))
    grey = np.clip(image * 255, 0, 255).astype(np.uint8)
    return np.dstack([grey, grey, grey])


def _centroids(crop: np.ndarray, expected: np.ndarray, radius: int) -> np.ndarray:
    grey = crop[:, :, 0].astype(np.float64)
    found = []
    for x, y in expected:
        x0, y0 = max(0, round(x) - radius), max(0, round(y) - radius)
        window = grey[y0 : round(y) + radius + 1, x0 : round(x) + radius + 1]
        ys, xs = np.mgrid[0 : window.shape[0], 0 : window.shape[1]]
        found.append(((xs * window).sum() / window.sum() + x0, (ys * window).sum() / window.sum() + y0))
    return np.array(found)


@pytest.mark.parametrize("size, factor", [(112, 1.0), (224, 2.0), (256, 256 / 112), (512, 512 / 112)])
def test_template_scales_uniformly_with_crop_size(size: int, factor: float) -> None:
    assert np.allclose(arcface_template(size), ARCFACE_112 * factor)
    # The same face region at every size: landmarks sit at the same fraction of the crop.
    assert np.allclose(arcface_template(size) / size, ARCFACE_112 / 112)


def test_template_is_the_published_arcface_one() -> None:
    assert arcface_template(112) == pytest.approx(ARCFACE_112)
    assert ARCFACE_112[0] == pytest.approx([38.2946, 51.6963]) and ARCFACE_112[4] == pytest.approx([70.7299, 92.2041])


@pytest.mark.parametrize("size", [112, 128, 512])
def test_exact_similarity_is_recovered_to_a_fraction_of_a_pixel(size: int) -> None:
    known = _similarity(3.7, 23.0, (410.0, -35.0))
    landmarks = warp_points(arcface_template(size), known)
    matrix = similarity_transform(landmarks, size)
    assert np.abs(warp_points(landmarks, matrix) - arcface_template(size)).max() < 1e-6
    assert transform_scale(matrix) == pytest.approx(1 / 3.7)


def test_noisy_landmarks_give_skimages_least_squares_similarity() -> None:
    rng = np.random.default_rng(7)
    landmarks = warp_points(ARCFACE_112, _similarity(2.1, -11.0, (300.0, 200.0))) + rng.normal(0, 3.0, (5, 2))
    reference = SimilarityTransform.from_estimate(landmarks, arcface_template(256))
    assert np.allclose(similarity_transform(landmarks, 256), reference.params[:2], atol=1e-9)


def test_mirrored_landmarks_are_not_fitted_with_a_reflection() -> None:
    mirrored = ARCFACE_112 * np.array([-1.0, 1.0]) + np.array([200.0, 0.0])
    matrix = similarity_transform(mirrored, 112)
    assert np.linalg.det(matrix[:, :2]) > 0


@pytest.mark.parametrize("size, scale, degrees", [(112, 1.6, 30.0), (256, 0.9, -15.0), (128, 5.0, 8.0), (512, 2.0, 170.0)])
def test_aligned_crop_shows_the_landmarks_at_the_template(size: int, scale: float, degrees: float) -> None:
    """Dots drawn at known landmarks in a photo appear at the template positions in the crop (< 1 px).

    scale 5 at 128 px takes the shrink-then-warp path for faces much larger than the crop."""
    landmarks = warp_points(ARCFACE_112 * (size / 112), _similarity(scale * 112 / size, degrees, (0.0, 0.0)))
    landmarks += np.array([900.0, 700.0]) - landmarks.mean(axis=0)
    photo = _blob_image(landmarks, (1400, 1800), sigma=1.5 * scale * 112 / size + 1.0)
    crop = align_face(photo, landmarks, size)
    assert crop.shape == (size, size, 3) and crop.dtype == np.uint8
    found = _centroids(crop, arcface_template(size), radius=max(5, size // 20))
    assert np.abs(found - arcface_template(size)).max() < 1.0


def test_region_warp_equals_warping_the_whole_photo_even_at_the_edge() -> None:
    photo = np.asarray(grace_hopper())
    for centre in [(256.0, 250.0), (30.0, 40.0), (500.0, 590.0)]:  # inside; over the top-left and bottom-right edges
        landmarks = ARCFACE_112 - ARCFACE_112.mean(axis=0) + np.array(centre)
        matrix = similarity_transform(landmarks, 128)
        whole = cv2.warpAffine(photo, matrix, (128, 128), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        assert np.array_equal(warp_crop(photo, matrix, 128), whole)


@pytest.mark.parametrize("photo", [grace_hopper, astronaut], ids=["grace_hopper", "astronaut"])
def test_dlib_landmarks_of_real_faces_land_within_a_few_pixels_of_the_template(detector: FaceDetector, photo: object) -> None:
    (face,) = detector.detect([np.asarray(photo())])[0]  # type: ignore[operator]
    residual = np.linalg.norm(warp_points(face.landmarks, similarity_transform(face.landmarks, 112)) - ARCFACE_112, axis=1)
    assert residual.max() < 8.0 and residual.mean() < 6.0  # STACK.md: ~1-7 px; the smiling astronaut ~5


def _rotate(photo: np.ndarray, degrees: float) -> np.ndarray:
    height, width = photo.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    return cv2.warpAffine(photo, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE)


def test_rotated_flipped_and_rescaled_photos_give_nearly_the_same_crop(detector: FaceDetector) -> None:
    """Compared at 32 px (landmark noise of a pixel or two at 112 px is not what we test)."""
    photo = np.asarray(grace_hopper())

    def crop(image: np.ndarray) -> np.ndarray:
        (face,) = detector.detect([np.ascontiguousarray(image)])[0]
        return align_face(image, face.landmarks, 112)

    def distance(a: np.ndarray, b: np.ndarray) -> float:
        small = [cv2.resize(np.ascontiguousarray(c), (32, 32), interpolation=cv2.INTER_AREA).astype(float) for c in (a, b)]
        return float(np.abs(small[0] - small[1]).mean())

    reference = crop(photo)
    variants = {
        "rotated +8": crop(_rotate(photo, 8)),
        "rotated -8": crop(_rotate(photo, -8)),
        "mirrored": crop(photo[:, ::-1])[:, ::-1],
        "half size": crop(cv2.resize(photo, (256, 300), interpolation=cv2.INTER_AREA)),
        "1.6x size": crop(cv2.resize(photo, (819, 960), interpolation=cv2.INTER_CUBIC)),
    }
    other_person = distance(crop(np.asarray(astronaut())), reference)
    assert other_person > 40
    for name, variant in variants.items():
        assert distance(variant, reference) < 20, name
