"""dlib's face ResNet in PyTorch reads dlib's own file and gives dlib's vectors, on any batch size."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facecraft_pipeline.faces.dlib_resnet import DlibFaceResNet, DlibFormatError, chips_to_tensor, read_dlib_resnet
from facecraft_pipeline.faces.embed import DlibEmbedder
from facecraft_pipeline.faces.model_files import RESNET_EMBEDDING, SHAPE_5, dlib_model_path
from facecraft_pipeline_tests.faces.identity_fixtures import VARIATIONS, identity_crops


def _chips() -> list[np.ndarray]:
    """dlib's 150 px chips of both people in every variation, plus two noise images (no face at all)."""
    embedder = DlibEmbedder(engine="dlib")
    crops = identity_crops(112)
    chips = [embedder.chip(crops[person][v]) for person in crops for v in VARIATIONS]
    rng = np.random.default_rng(0)
    return chips + [rng.integers(0, 256, (150, 150, 3), dtype=np.uint8) for _ in range(2)]


def test_the_file_holds_29_convolutions_29_affine_layers_and_one_256_to_128_matrix() -> None:
    weights = read_dlib_resnet(dlib_model_path(RESNET_EMBEDDING))
    assert len(weights["convs"]) == 58 and len(weights["affines"]) == 58
    assert weights["convs"][0].shape == (32, 3, 7, 7) and weights["convs"][-2].shape == (256, 256, 3, 3)
    assert weights["linear"][0].shape == (256, 128)


def test_vectors_match_dlibs_own_forward_pass_within_float_tolerance() -> None:
    chips = _chips()
    dlib_vectors = DlibEmbedder(engine="dlib")._network.compute_face_descriptor(chips, 0)  # noqa: SLF001
    expected = np.asarray([np.asarray(v) for v in dlib_vectors], dtype=np.float32)
    model = DlibFaceResNet.from_dlib_file(dlib_model_path(RESNET_EMBEDDING))
    with torch.inference_mode():
        got = model(chips_to_tensor(chips)).numpy()
        one_by_one = np.concatenate([model(chips_to_tensor([chip])).numpy() for chip in chips[:3]])
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(one_by_one, got[:3], atol=1e-5, rtol=0)
    assert np.abs(expected).max() > 0.1  # real vectors, not zeros that would match anything


def test_both_engines_embed_crops_the_same() -> None:
    crops = [identity_crops(112)["grace"][v] for v in VARIATIONS]
    np.testing.assert_allclose(DlibEmbedder(engine="torch").embed(crops), DlibEmbedder(engine="dlib").embed(crops), atol=1e-5, rtol=0)


def test_a_file_that_is_not_the_face_resnet_is_refused_naming_the_file(tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(DlibFormatError, match="shape_predictor_5_face_landmarks.dat: found 0 convolutions"):
        read_dlib_resnet(dlib_model_path(SHAPE_5))
    torn = tmp_path / "torn.dat"
    torn.write_bytes(dlib_model_path(RESNET_EMBEDDING).read_bytes()[:400])
    with pytest.raises(DlibFormatError, match="torn.dat: not dlib's face-recognition ResNet"):
        read_dlib_resnet(torn)


def test_unknown_engines_and_jitter_without_dlib_are_refused() -> None:
    with pytest.raises(ValueError, match="engine must be one of"):
        DlibEmbedder(engine="onnx")
    with pytest.raises(ValueError, match="jitters"):
        DlibEmbedder(jitters=2)
