"""Identity scores: the best-match maths by hand, and real faces passed through the real detector and embedder."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from facecraft_pipeline.evaluation import Reference, best_match, score_images, summarize
from facecraft_pipeline.evaluation.scores import diversity
from facecraft_pipeline_tests.evaluation.conftest import photo_image


def test_best_match_equals_a_hand_computation_on_three_embeddings():
    references = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    generated = np.array([[3.0, 4.0, 0.0]])
    best, index = best_match(generated, references)
    # cosine to each reference: 3/5, 4/5, 0 -> the best match is the second, 0.8
    assert index.tolist() == [1] and best[0] == pytest.approx(0.8)
    compared = Reference(references, "euclidean", 4.3, "toy").compare(generated)
    # Euclidean: |(2,4,0)| = sqrt 20, |(3,3,0)| = sqrt 18, |(3,4,-1)| = sqrt 26 -> sqrt 18 = 4.243 < 4.3: same person
    assert compared["distance"][0] == pytest.approx(math.sqrt(18)) and bool(compared["same"][0])
    # centroid (1/3, 1/3, 1/3): cosine = (7/3) / (5 * sqrt(1/3))
    assert compared["centroid"][0] == pytest.approx((7 / 3) / (5 * math.sqrt(1 / 3)))
    assert not Reference(references, "euclidean", 4.2, "toy").compare(generated)["same"][0]


def test_diversity_is_zero_for_one_face_drawn_every_time():
    same = np.tile([[0.1, 0.2, 0.3]], (4, 1))
    assert diversity(same, "euclidean") == pytest.approx(0.0)
    assert diversity(np.array([[0.0, 0.0], [3.0, 4.0]]), "euclidean") == pytest.approx(5.0)
    assert diversity(same[:1], "euclidean") is None


def test_real_photos_passed_as_generated_images_are_found_and_scored(face_tools):
    probe, reference = face_tools
    owner = [photo_image("grace", v).reduce(3) for v in ("flip", "rot+15")]  # small: upscaled before detection
    other = [photo_image("astronaut", "original")]
    noise = [Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))]
    images, vectors = score_images(owner + other + noise, probe, reference)
    assert [s.faces for s in images] == [1, 1, 1, 0] and vectors.shape == (3, 128)
    assert images[0].same_person and images[1].same_person and not images[2].same_person
    assert min(images[0].best_match, images[1].best_match) > images[2].best_match
    assert images[3].best_match is None and not images[3].same_person  # counted, not scored zero
    row = summarize("toy", 7, "d", "gan", probe.name, probe.embedder.metric, images, vectors)
    assert (row.images, row.faces, row.face_share, row.same_person_share) == (4, 3, 0.75, 0.5)
    assert row.identity_mean == pytest.approx(np.mean([s.best_match for s in images[:3]]))
    assert row.embedder.startswith("dlib-128") and row.diversity > 0.3


def test_a_reference_of_another_embedder_is_refused(face_tools):
    probe, reference = face_tools
    other = Reference(reference.vectors, reference.metric, 0.6, "onnx-arcface-0000")
    with pytest.raises(ValueError, match="not the one"):
        score_images([photo_image("grace", "original")], probe, other)
