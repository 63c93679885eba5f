"""The embedding cache only embeds crops it has not seen, per embedder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from facecraft_pipeline.faces.embed import EmbeddingCache, OnnxArcFaceEmbedder
from facecraft_pipeline.sources.base import sha256_file
from facecraft_pipeline_tests.faces.identity_fixtures import dlib_embedder, identity_crops
from facecraft_pipeline_tests.faces.tiny_onnx import write_linear_model


def _crop_files(folder: Path, count: int, seed: int = 0) -> tuple[list[Path], list[str]]:
    rng = np.random.default_rng(seed)
    paths = []
    for index in range(count):
        path = folder / f"crop-{seed}-{index}.png"
        Image.fromarray(rng.integers(0, 256, (112, 112, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths, [sha256_file(p) for p in paths]


def test_second_run_embeds_only_the_new_crops_and_returns_the_same_vectors(tmp_path: Path) -> None:
    write_linear_model(tmp_path / "tiny.onnx")
    embedder = OnnxArcFaceEmbedder(tmp_path / "tiny.onnx")
    cache = EmbeddingCache(tmp_path / "cache")
    paths, hashes = _crop_files(tmp_path, 4)
    first = cache.embed_files(embedder, paths, hashes)
    assert (cache.last.hits, cache.last.misses) == (0, 4)

    new_paths, new_hashes = _crop_files(tmp_path, 2, seed=1)
    second = cache.embed_files(embedder, paths + new_paths, hashes + new_hashes)
    assert (cache.last.hits, cache.last.misses) == (4, 2)
    np.testing.assert_array_equal(second[:4], first)
    np.testing.assert_allclose(second[4:], embedder.embed([np.asarray(Image.open(p)) for p in new_paths]), atol=1e-6)


def test_vectors_are_served_by_content_hash_not_by_path(tmp_path: Path) -> None:
    write_linear_model(tmp_path / "tiny.onnx")
    embedder = OnnxArcFaceEmbedder(tmp_path / "tiny.onnx")
    cache = EmbeddingCache(tmp_path / "cache")
    paths, hashes = _crop_files(tmp_path, 1)
    moved = tmp_path / "moved.png"
    moved.write_bytes(paths[0].read_bytes())
    cache.embed_files(embedder, paths, hashes)
    vectors = cache.embed_files(embedder, [moved, moved], [sha256_file(moved)] * 2)
    assert (cache.last.hits, cache.last.misses) == (2, 0)
    assert vectors.shape == (2, embedder.dim)


def test_another_embedder_never_reuses_vectors_cached_by_the_first(tmp_path: Path) -> None:
    write_linear_model(tmp_path / "tiny.onnx")
    cache = EmbeddingCache(tmp_path / "cache")
    path = tmp_path / "grace.png"
    Image.fromarray(identity_crops()["grace"]["original"]).save(path)
    cache.embed_files(OnnxArcFaceEmbedder(tmp_path / "tiny.onnx"), [path], [sha256_file(path)])
    vectors = cache.embed_files(dlib_embedder(), [path], [sha256_file(path)])
    assert (cache.last.hits, cache.last.misses) == (0, 1)
    assert vectors.shape == (1, 128)


def test_a_damaged_cache_file_is_recomputed(tmp_path: Path) -> None:
    write_linear_model(tmp_path / "tiny.onnx")
    embedder = OnnxArcFaceEmbedder(tmp_path / "tiny.onnx")
    cache = EmbeddingCache(tmp_path / "cache")
    paths, hashes = _crop_files(tmp_path, 1)
    first = cache.embed_files(embedder, paths, hashes)
    for stored in (tmp_path / "cache").rglob("*.npy"):
        stored.write_bytes(b"not a numpy file")
    again = cache.embed_files(embedder, paths, hashes)
    assert (cache.last.hits, cache.last.misses) == (0, 1)
    np.testing.assert_array_equal(again, first)
