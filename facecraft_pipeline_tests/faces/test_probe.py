"""The one identity probe: small images upscaled one agreed way, the owner's face found and embedded, none where none is."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from facecraft_pipeline.faces.detector_settings import DetectorSettings
from facecraft_pipeline.faces.embed import embedding_distances
from facecraft_pipeline.faces.embedder_settings import EmbedderSettings
from facecraft_pipeline.faces.probe import DETECT_SIDE, IdentityProbe, ProbeSpec, upscaled
from facecraft_pipeline_tests.faces.identity_fixtures import VARIATIONS, dlib_embedder, identity_crops, identity_embeddings


def test_small_images_are_upscaled_by_their_longest_edge_and_large_ones_left_alone() -> None:
    assert upscaled(Image.new("RGB", (64, 64))).size == (DETECT_SIDE, DETECT_SIDE)
    assert upscaled(Image.new("L", (64, 48)), 256).size == (256, 192)  # and made RGB
    assert upscaled(Image.new("RGB", (48, 64)), 256).size == (192, 256)
    assert upscaled(Image.new("RGB", (300, 200)), 256).size == (300, 200)


def test_the_owner_is_found_in_a_small_image_and_nothing_in_noise() -> None:
    probe = IdentityProbe(embedder=dlib_embedder())
    owner = Image.fromarray(identity_crops(160)["grace"]["flip"]).resize((64, 64), Image.Resampling.LANCZOS)  # a GAN sample
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    probed = probe.probe([owner, noise])
    assert [p.faces for p in probed] == [1, 0] and probed[1].vector is None
    grace = identity_embeddings()["grace"][VARIATIONS.index("original")]
    assert embedding_distances(probed[0].vector, grace, "euclidean")[0, 0] < 0.6  # dlib's same-person rule
    assert [v is None for v in probe.embed([owner, noise])] == [False, True]


def test_a_spec_names_what_finds_faces_and_overrides_replace_only_what_is_given() -> None:
    spec = ProbeSpec(DetectorSettings(workers=3, batch_size=2), EmbedderSettings())
    assert spec.detector_key == {k: v for k, v in spec.detector_key.items() if k not in ("workers", "batch_size")}
    assert spec.detector_key["score_floor"] == 0.4  # HOG's floor when min_score is empty
    stricter = spec.with_detector(kind=None, min_score=0.8)
    assert stricter.detector.min_score == 0.8 and stricter.detector.kind == "dlib" and stricter.embedder == spec.embedder
    assert spec.with_detector(kind=None, min_score=None) is spec


def test_an_onnx_embedder_without_its_model_file_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="onnx_model"):
        EmbedderSettings(kind="onnx")
    with pytest.raises(ValueError, match="kind"):
        EmbedderSettings(kind="facenet")
