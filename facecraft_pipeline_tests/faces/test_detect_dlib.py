"""The dlib detector finds the faces that are there, and only those, in the photo's own coordinates."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facecraft_pipeline.faces.detect import DEFAULT_MIN_SCORE, DetectorSettings, FaceDetector, make_detector
from facecraft_pipeline.faces.model_files import SHAPE_68, dlib_model_path
from facecraft_pipeline.faces.types import Face
from facecraft_pipeline_tests.faces.face_samples import astronaut, chelsea, coffee, grace_hopper, side_by_side


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return make_detector(DetectorSettings(workers=1))


def _inside(face: Face, image: np.ndarray) -> bool:
    x1, y1, x2, y2 = face.box
    return 0 <= x1 < x2 <= image.shape[1] and 0 <= y1 < y2 <= image.shape[0]


def test_model_files_are_found_without_importing_pkg_resources() -> None:
    path = dlib_model_path(SHAPE_68)
    assert path.is_file() and path.stat().st_size > 50_000_000
    with pytest.raises(FileNotFoundError, match="no_such_model.dat"):
        dlib_model_path("no_such_model.dat")


@pytest.mark.parametrize("photo", [grace_hopper, astronaut], ids=["grace_hopper", "astronaut"])
def test_one_face_in_each_portrait(detector: FaceDetector, photo: object) -> None:
    image = np.asarray(photo())  # type: ignore[operator]
    (face,) = detector.detect([image])[0]
    assert _inside(face, image) and face.score >= DEFAULT_MIN_SCORE["hog"]
    assert face.landmarks.shape == (5, 2) and face.landmarks.dtype == np.float32
    left_eye, right_eye, nose, mouth_left, mouth_right = face.landmarks
    assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0]  # image-left first
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])  # eyes, nose, mouth downwards


def test_no_face_in_coffee_or_a_cat(detector: FaceDetector) -> None:
    assert detector.detect([np.asarray(coffee()), np.asarray(chelsea())]) == [[], []]


def test_two_people_side_by_side_give_two_faces(detector: FaceDetector) -> None:
    image = side_by_side(np.asarray(grace_hopper()), np.asarray(astronaut()))
    faces = detector.detect([image])[0]
    assert len(faces) == 2
    assert sorted(face.box[0] < 512 for face in faces) == [False, True]  # one in each half
    assert faces[0].score >= faces[1].score


def test_score_floor_drops_weak_boxes_that_a_lower_floor_keeps() -> None:
    image = np.asarray(astronaut())
    lenient = make_detector(DetectorSettings(workers=1, min_score=-0.5)).detect([image])[0]
    assert len(lenient) > 1 and min(face.score for face in lenient) < DEFAULT_MIN_SCORE["hog"]


def test_very_large_photo_is_detected_downscaled_with_coordinates_in_full_size_pixels(detector: FaceDetector) -> None:
    photo = np.asarray(grace_hopper())
    (reference,) = detector.detect([photo])[0]
    big = np.full((4000, 6000, 3), 90, dtype=np.uint8)
    big[200:3800, 2000:5072] = cv2.resize(photo, (512 * 6, 600 * 6), interpolation=cv2.INTER_CUBIC)
    (face,) = detector.detect([big])[0]
    expected = (reference.landmarks.astype(np.float64) + 0.5) * 6 - 0.5 + np.array([2000.0, 200.0])
    assert face.eye_distance == pytest.approx(reference.eye_distance * 6, rel=0.05)
    assert np.linalg.norm(face.landmarks - expected, axis=1).max() < 0.05 * face.eye_distance
    assert _inside(face, big)


def test_batch_results_equal_one_by_one_results_with_parallel_workers() -> None:
    images = [np.asarray(grace_hopper()), np.asarray(coffee()), np.asarray(astronaut()), np.asarray(chelsea())]
    serial = make_detector(DetectorSettings(workers=1))
    parallel = make_detector(DetectorSettings(workers=2))
    one_by_one = [serial.detect([image])[0] for image in images]
    batched = parallel.detect(images)
    assert [len(faces) for faces in batched] == [1, 0, 1, 0]
    for expected, got in zip(one_by_one, batched):
        assert [f.box for f in got] == [f.box for f in expected]
        assert all(np.array_equal(a.landmarks, b.landmarks) for a, b in zip(got, expected))


@pytest.mark.parametrize(
    "values", [{"kind": "mtcnn"}, {"dlib_model": "resnet"}, {"batch_size": 0}], ids=["unknown kind", "unknown dlib model", "empty batch"]
)
def test_invalid_settings_are_refused_before_loading_anything(values: dict) -> None:
    with pytest.raises(ValueError, match=f"DetectorSettings.{next(iter(values))}"):
        DetectorSettings(**values)
