"""RetinaFace plumbing, with RANDOM weights: these tests say nothing about detection quality.

The real ResNet-50 weights cannot be downloaded on this machine. Every test here builds the
package's real network with random (seeded) weights -- some with the heads set to known constants
so the decoded boxes are predictable -- saves them to a local file, and checks what our code does
around the network: weight resolution and loading, letterboxing, batched decoding back to photo
coordinates, box clipping, the empty result, and the error when no weights are reachable.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from facecraft_pipeline.faces.detect import DetectorSettings, make_detector
from facecraft_pipeline.faces.retinaface_detector import (
    RetinaFaceDetector,
    WeightsNotFoundError,
    build_network,
    hub_cache_path,
)
from facecraft_pipeline_tests.faces.face_samples import astronaut, grace_hopper

SIZE = 128  # small letterbox: fast on CPU, and the decoding maths is the same at 1024
ON, OFF = (-10.0, 10.0), (10.0, -10.0)  # class-head logits (background, face): score ~1 / ~0


def _set_heads(network: torch.nn.Module, face_level: int | None, class_noise: float = 0.0) -> None:
    """Zero box and landmark regressions (decoded boxes = prior boxes, landmarks = prior centres); make
    only the anchors of `face_level` (0: 16/32 px, 1: 64/128 px, 2: 256/512 px) score as faces."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for level in range(3):
            for head in (network.BboxHead[level], network.LandmarkHead[level]):
                head.conv1x1.weight.zero_()
                head.conv1x1.bias.zero_()
            classifier = network.ClassHead[level].conv1x1
            classifier.weight.copy_(torch.randn(classifier.weight.shape, generator=generator) * class_noise)
            classifier.bias.copy_(torch.tensor((ON if level == face_level else OFF) * 2))


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random ResNet-50 RetinaFace weights (seed 0) whose 64/128 px anchors all score as faces."""
    torch.manual_seed(0)
    network = build_network()
    _set_heads(network, face_level=1)
    path = tmp_path_factory.mktemp("retinaface") / "random_retinaface.pth"
    torch.save(network.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def detector(weights_file: Path) -> RetinaFaceDetector:
    return make_detector(DetectorSettings(kind="retinaface", retinaface_weights=str(weights_file), retinaface_max_size=SIZE, batch_size=2))  # type: ignore[return-value]


def test_weights_are_loaded_from_a_local_file(weights_file: Path, detector: RetinaFaceDetector) -> None:
    saved = torch.load(weights_file, weights_only=True)
    loaded = detector.network.state_dict()
    assert saved.keys() == loaded.keys()
    assert all(torch.equal(saved[name], loaded[name].cpu()) for name in ("body.conv1.weight", "fpn.output1.0.weight", "ClassHead.1.conv1x1.bias"))
    assert detector.weights_path == weights_file and detector.name == "retinaface-resnet50"


def test_release_style_zip_in_the_torch_hub_cache_is_found_without_network(
    weights_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The GitHub release ships a zip holding one torch file; placed under the release file name in
    $TORCH_HOME/hub/checkpoints it is used with retinaface_weights unset and downloads disabled."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    target = hub_cache_path()
    assert target.parent == tmp_path / "hub" / "checkpoints" and target.name.endswith(".zip")
    target.parent.mkdir(parents=True)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.write(weights_file, "retinaface_resnet50_2020-07-20.pth")
    detector = RetinaFaceDetector(DetectorSettings(kind="retinaface", retinaface_max_size=SIZE, retinaface_download=False))
    assert detector.weights_path == target
    assert torch.equal(detector.network.state_dict()["body.conv1.weight"].cpu(), torch.load(weights_file, weights_only=True)["body.conv1.weight"])


def test_no_weights_anywhere_is_a_clear_error_naming_where_to_put_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsNotFoundError) as caught:
        make_detector(DetectorSettings(kind="retinaface", retinaface_download=False))
    assert str(hub_cache_path()) in str(caught.value) and "retinaface_weights" in str(caught.value)
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        make_detector(DetectorSettings(kind="retinaface", retinaface_weights=str(tmp_path / "missing.pth")))


def test_unreachable_weights_url_is_a_clear_error_naming_the_cache_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsNotFoundError) as caught:
        make_detector(DetectorSettings(kind="retinaface", retinaface_weights="http://127.0.0.1:9/retinaface.pth"))
    message = str(caught.value)
    assert "could not be downloaded" in message and str(tmp_path / "hub" / "checkpoints" / "retinaface.pth") in message


def test_network_output_shapes_match_the_prior_boxes(detector: RetinaFaceDetector) -> None:
    with torch.inference_mode():
        loc, conf, landmarks = detector.network(torch.zeros(2, 3, SIZE, SIZE))
    anchors = detector._priors.shape[0]
    assert loc.shape == (2, anchors, 4) and conf.shape == (2, anchors, 2) and landmarks.shape == (2, anchors, 10)
    assert anchors == 2 * sum((SIZE // stride) ** 2 for stride in (8, 16, 32))


def test_decoded_faces_are_in_photo_coordinates_and_clipped(detector: RetinaFaceDetector) -> None:
    """A 200x100 photo is letterboxed into 128x128 (x0.64, 32 px bars above and below). With zeroed
    regression heads every face is a 64 or 128 px prior box on a 16 px grid, so in the photo
    unclipped boxes are exactly 100 or 200 px wide and centred on the mapped-back grid."""
    photo = np.asarray(grace_hopper())[:100, 150:350].copy()
    (faces,) = detector.detect([photo])
    assert faces, "the level-1 anchors all score ~1 with these weights"
    clipped = 0
    for face in faces:
        x1, y1, x2, y2 = face.box
        assert 0 <= x1 < x2 <= 200 and 0 <= y1 < y2 <= 100
        assert face.landmarks.shape == (5, 2) and face.landmarks.dtype == np.float32
        centre = face.landmarks[0]
        assert np.allclose(face.landmarks, centre)  # zero landmark regression: all five at the prior centre
        grid = (centre * 0.64 + np.array([0.0, 32.0]) - 8.0) / 16.0
        assert np.allclose(grid, np.round(grid), atol=1e-3)
        if 0 < x1 and x2 < 200 and 0 < y1 and y2 < 100:
            assert x2 - x1 == pytest.approx(y2 - y1, abs=1e-3) and (x2 - x1) in (pytest.approx(100, abs=1e-3), pytest.approx(200, abs=1e-3))
            assert np.allclose([(x1 + x2) / 2, (y1 + y2) / 2], centre, atol=1e-3)
        else:
            clipped += 1
    assert clipped > 0  # anchors in the letterbox bars reach past the photo: they were clipped, not dropped


def test_nothing_above_the_floor_gives_an_empty_list_per_photo(weights_file: Path) -> None:
    """The package's predict_jsons answers [{"bbox": [], "score": -1}] here; our detector answers []."""
    detector = RetinaFaceDetector(DetectorSettings(kind="retinaface", retinaface_weights=str(weights_file), retinaface_max_size=SIZE))
    _set_heads(detector.network, face_level=None)
    assert detector.detect([np.asarray(grace_hopper()), np.asarray(astronaut())]) == [[], []]


def test_batched_detection_equals_one_photo_at_a_time(weights_file: Path) -> None:
    """Content-dependent random scores, photos of different shapes, batches of 2 over 3 photos."""
    detector = RetinaFaceDetector(
        DetectorSettings(kind="retinaface", retinaface_weights=str(weights_file), retinaface_max_size=SIZE, batch_size=2, min_score=0.5)
    )
    torch.manual_seed(3)
    _set_heads(detector.network, face_level=1, class_noise=0.05)
    photos = [np.asarray(grace_hopper()), np.asarray(astronaut())[:, :300].copy(), np.asarray(grace_hopper())[100:250].copy()]
    batched = detector.detect(photos)
    single = [detector.detect([photo])[0] for photo in photos]
    assert [len(faces) for faces in batched] == [len(faces) for faces in single]
    assert 0 < sum(len(faces) for faces in batched) < 3 * detector._priors.shape[0]  # the floor kept some, not all
    for got, expected in zip(batched, single):
        assert np.allclose([f.box for f in got], [f.box for f in expected], atol=1e-2)
        assert np.allclose([f.score for f in got], [f.score for f in expected], atol=1e-4)
