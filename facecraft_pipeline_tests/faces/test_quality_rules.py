"""Quality rules keep good faces and name the reason for every face they reject."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facecraft_pipeline.faces.align import ARCFACE_112, align_face
from facecraft_pipeline.faces.detect import DetectorSettings, make_detector
from facecraft_pipeline.faces.quality import REASONS, QualitySettings, assess, judge, measure
from facecraft_pipeline.faces.types import Face
from facecraft_pipeline_tests.faces.face_samples import astronaut, grace_hopper


@pytest.fixture(scope="module")
def grace_face() -> Face:
    (face,) = make_detector(DetectorSettings(workers=1)).detect([np.asarray(grace_hopper())])[0]
    return face


def _frontal(scale: float = 3.0, nose_shift: float = 0.0, box_margin: float = 60.0) -> Face:
    """Template landmarks scaled into a photo, optionally with the nose moved sideways (a turned head)."""
    points = ARCFACE_112 * scale + 100.0
    points[2, 0] += nose_shift * scale
    x1, y1 = points.min(axis=0) - box_margin
    x2, y2 = points.max(axis=0) + box_margin
    return Face(box=(x1, y1, x2, y2), score=1.0, landmarks=points)


def test_a_sharp_frontal_real_face_is_kept(grace_face: Face) -> None:
    photo = np.asarray(grace_hopper())
    for size in (112, 128, 256):
        assert assess(grace_face, align_face(photo, grace_face.landmarks, size), QualitySettings()) is None


def test_face_px_is_the_photo_extent_of_the_crop_whatever_the_crop_size(grace_face: Face) -> None:
    photo = np.asarray(grace_hopper())
    sizes = [measure(grace_face, align_face(photo, grace_face.landmarks, size)).face_px for size in (112, 256, 512)]
    assert sizes == pytest.approx([sizes[0]] * 3)
    assert 2.8 * grace_face.eye_distance < sizes[0] < 3.6 * grace_face.eye_distance  # ~3.2x the inter-ocular distance


def test_blurred_face_is_rejected_as_blurry(grace_face: Face) -> None:
    blurred = cv2.GaussianBlur(np.asarray(grace_hopper()), (0, 0), 6)
    crop = align_face(blurred, grace_face.landmarks, 128)
    assert measure(grace_face, crop).sharpness < QualitySettings().min_sharpness
    assert assess(grace_face, crop, QualitySettings()) == "blurry"
    assert assess(grace_face, crop, QualitySettings(min_sharpness=0.0)) is None


def test_small_face_is_rejected_as_too_small(grace_face: Face) -> None:
    shrunk = cv2.resize(np.asarray(grace_hopper()), (64, 75), interpolation=cv2.INTER_AREA)  # 1/8 size
    face = Face(box=tuple(v / 8 for v in grace_face.box), score=grace_face.score, landmarks=grace_face.landmarks / 8)
    crop = align_face(shrunk, face.landmarks, 128)
    assert measure(face, crop).face_px < 40
    assert assess(face, crop, QualitySettings(min_sharpness=0.0)) == "too-small"


def test_low_score_is_rejected_only_when_a_score_floor_is_set(grace_face: Face) -> None:
    crop = align_face(np.asarray(grace_hopper()), grace_face.landmarks, 128)
    assert assess(grace_face, crop, QualitySettings(min_score=grace_face.score + 0.1)) == "low-score"
    assert assess(grace_face, crop, QualitySettings(min_score=None)) is None


def test_turned_head_is_rejected_as_extreme_pose() -> None:
    canvas = np.asarray(astronaut())
    frontal, turned, profile = _frontal(), _frontal(nose_shift=12.0), _frontal(nose_shift=25.0)
    settings = QualitySettings(min_sharpness=0.0)
    ratios = [measure(face, align_face(canvas, face.landmarks, 112)).yaw_ratio for face in (frontal, turned, profile)]
    assert ratios[0] == pytest.approx(1.0, abs=0.05) and 3.0 < ratios[1] < np.inf and ratios[2] == np.inf
    assert [assess(face, align_face(canvas, face.landmarks, 112), settings) for face in (frontal, turned, profile)] == [
        None,
        "extreme-pose",
        "extreme-pose",
    ]


def test_eyes_outside_the_box_are_rejected_unless_that_check_is_off() -> None:
    face = _frontal(box_margin=0.0)
    cramped = Face(box=(face.box[0] + 40, face.box[1], face.box[2], face.box[3]), score=1.0, landmarks=face.landmarks)
    crop = align_face(np.asarray(astronaut()), cramped.landmarks, 112)
    assert assess(cramped, crop, QualitySettings(min_sharpness=0.0)) == "eyes-outside-box"
    assert assess(cramped, crop, QualitySettings(min_sharpness=0.0, eyes_in_box=False)) is None


def test_a_face_failing_several_rules_reports_them_in_a_fixed_order(grace_face: Face) -> None:
    crop = align_face(np.asarray(grace_hopper()), grace_face.landmarks, 128)
    measures = measure(grace_face, crop)
    strict = QualitySettings(min_face_px=10_000, min_score=99.0, min_sharpness=1e9, max_yaw_ratio=0.5)
    relaxed = [
        strict,
        QualitySettings(min_face_px=10_000, min_score=None, min_sharpness=1e9, max_yaw_ratio=0.5),
        QualitySettings(min_face_px=40, min_score=None, min_sharpness=1e9, max_yaw_ratio=0.5),
        QualitySettings(min_face_px=40, min_score=None, min_sharpness=1e9, max_yaw_ratio=3.0),
        QualitySettings(min_face_px=40, min_score=None, min_sharpness=40.0, max_yaw_ratio=3.0),
    ]
    assert [judge(grace_face, measures, settings) for settings in relaxed] == ["low-score", "too-small", "extreme-pose", "blurry", None]
    assert set(REASONS) >= {"low-score", "too-small", "extreme-pose", "blurry", "eyes-outside-box"}
