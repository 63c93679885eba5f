"""ONNX ArcFace plumbing, checked with a tiny hand-written linear ONNX graph (not a face model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facecraft_pipeline.faces.embed import OnnxArcFaceEmbedder, make_embedder
from facecraft_pipeline_tests.faces.tiny_onnx import expected_embedding, write_linear_model


def _crops(count: int, size: int = 112, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(count)]


def test_input_is_rgb_scaled_to_minus_one_one_in_nchw_and_output_is_unit_length(tmp_path: Path) -> None:
    weights = write_linear_model(tmp_path / "tiny.onnx")
    embedder = OnnxArcFaceEmbedder(tmp_path / "tiny.onnx")
    crops = _crops(3)
    vectors = embedder.embed(crops)
    assert vectors.shape == (3, 8) and vectors.dtype == np.float32
    for crop, vector in zip(crops, vectors, strict=True):
        np.testing.assert_allclose(vector, expected_embedding(crop, weights), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    assert (embedder.dim, embedder.metric, embedder.input_size) == (8, "cosine", (112, 112))


def test_larger_crops_are_resized_to_the_models_input(tmp_path: Path) -> None:
    write_linear_model(tmp_path / "tiny.onnx")
    embedder = OnnxArcFaceEmbedder(tmp_path / "tiny.onnx")
    crop = _crops(1)[0]
    doubled = crop.repeat(2, axis=0).repeat(2, axis=1)  # 224 px, each pixel a 2x2 block
    np.testing.assert_allclose(embedder.embed([doubled]), embedder.embed([crop]), atol=1e-5)


def test_a_model_with_a_fixed_batch_of_one_still_embeds_many_crops(tmp_path: Path) -> None:
    weights = write_linear_model(tmp_path / "batch1.onnx", batch=1)
    crops = _crops(3, seed=1)
    vectors = OnnxArcFaceEmbedder(tmp_path / "batch1.onnx").embed(crops)
    np.testing.assert_allclose(vectors[2], expected_embedding(crops[2], weights), atol=1e-5)


def test_the_name_follows_the_model_file_so_caches_never_mix_models(tmp_path: Path) -> None:
    write_linear_model(tmp_path / "a.onnx", seed=0)
    write_linear_model(tmp_path / "b.onnx", seed=1)
    write_linear_model(tmp_path / "a-copy.onnx", seed=0)
    names = [OnnxArcFaceEmbedder(tmp_path / f).name for f in ("a.onnx", "b.onnx", "a-copy.onnx")]
    assert names[0] != names[1]
    assert names[0] == names[2]


def test_make_embedder_onnx_uses_the_given_file_and_a_missing_file_is_an_error(tmp_path: Path) -> None:
    write_linear_model(tmp_path / "tiny.onnx")
    assert isinstance(make_embedder("onnx", str(tmp_path / "tiny.onnx")), OnnxArcFaceEmbedder)
    with pytest.raises(FileNotFoundError):
        make_embedder("onnx", str(tmp_path / "missing.onnx"))
