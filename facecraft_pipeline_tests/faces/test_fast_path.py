"""The fast path (worker processes for detect + align, dlib's ResNet in PyTorch) gives the plain path's results.

The plain path is what a plain dlib loop does: everything in this process, dlib's own forward pass."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from facecraft_pipeline.faces.detector_settings import DetectorSettings
from facecraft_pipeline.faces.embed import DlibEmbedder, EmbeddingCache
from facecraft_pipeline.faces.extract import FaceCropSettings, PhotoInput, extract_faces, uses_worker_processes
from facecraft_pipeline.sources.base import sha256_file
from facecraft_pipeline_tests.faces.face_samples import astronaut, coffee, grace_hopper, save, side_by_side


def _photos(folder: Path) -> list[PhotoInput]:
    grace, nasa = np.asarray(grace_hopper()), np.asarray(astronaut())
    images = {
        "grace.jpg": grace,
        "grace_flipped.jpg": grace[:, ::-1],
        "grace_big.jpg": cv2.resize(grace, None, fx=1.7, fy=1.7, interpolation=cv2.INTER_CUBIC),
        "astronaut.png": nasa,
        "two.jpg": side_by_side(grace, nasa),
        "coffee.jpg": np.asarray(coffee()),
        "dim.jpg": (grace * 0.6).astype(np.uint8),
    }
    folder.mkdir(parents=True)
    return [PhotoInput(name, save(np.ascontiguousarray(image), folder / name), sha256_file(folder / name)) for name, image in images.items()]


def _run(photos: list[PhotoInput], out: Path, workers: int, engine: str):
    manifest = extract_faces(photos, out, FaceCropSettings(detector=DetectorSettings(workers=workers)))
    kept = manifest.kept_faces
    embedder = DlibEmbedder(engine=engine)
    vectors = EmbeddingCache(out / "embeddings").embed_files(embedder, [f.crop_path for f in kept], [f.crop_sha256 for f in kept])
    return manifest, vectors


@pytest.mark.parametrize("workers", [2, 3])
def test_worker_processes_keep_the_same_faces_and_embeddings_as_the_plain_path(tmp_path: Path, workers: int) -> None:
    photos = _photos(tmp_path / "photos")
    fast_settings = FaceCropSettings(detector=DetectorSettings(workers=workers))
    assert uses_worker_processes(fast_settings, len(photos)) and not uses_worker_processes(FaceCropSettings(detector=DetectorSettings(workers=1)), len(photos))
    plain, plain_vectors = _run(photos, tmp_path / "plain", workers=1, engine="dlib")
    fast, fast_vectors = _run(photos, tmp_path / "fast", workers=workers, engine="torch")

    assert plain.counts["kept"] == 7 and plain.counts["computed"] == fast.counts["computed"] == len(photos)
    assert fast.digest == plain.digest  # same statuses, reasons, kept faces and crop bytes
    assert [(f.photo_id, f.index, f.kept, f.reason, f.crop_sha256) for f in fast.faces] == [
        (f.photo_id, f.index, f.kept, f.reason, f.crop_sha256) for f in plain.faces
    ]
    for a, b in zip(fast.faces, plain.faces):
        assert a.box == b.box and a.landmarks == b.landmarks and a.score == b.score
    assert fast_vectors.shape == plain_vectors.shape == (7, 128)
    np.testing.assert_allclose(fast_vectors, plain_vectors, atol=1e-5, rtol=0)
