"""dlib identity vectors from ArcFace crops keep dlib's rule: same person < 0.6, two people apart."""

from __future__ import annotations

import numpy as np
import pytest

from facecraft_pipeline.faces.embed import DlibEmbedder, embedding_distances, make_embedder
from facecraft_pipeline_tests.faces.identity_fixtures import (
    VARIATIONS,
    dlib_embedder,
    identity_crops,
    identity_embeddings,
)


def test_vectors_are_128_float32_one_row_per_crop() -> None:
    vectors = identity_embeddings()["grace"]
    assert vectors.shape == (len(VARIATIONS), 128)
    assert vectors.dtype == np.float32
    assert np.isfinite(vectors).all()


@pytest.mark.parametrize("person", ["grace", "astronaut"])
def test_every_variation_of_one_photo_stays_the_same_person(person: str) -> None:
    vectors = identity_embeddings()[person]
    distances = embedding_distances(vectors, vectors, "euclidean")
    assert distances.max() < dlib_embedder().same_person_distance == 0.6


def test_the_two_people_are_different_people_and_never_closer_than_any_same_person_pair() -> None:
    grace, astronaut = identity_embeddings()["grace"], identity_embeddings()["astronaut"]
    cross = embedding_distances(grace, astronaut, "euclidean")
    same = max(
        embedding_distances(grace, grace, "euclidean").max(),
        embedding_distances(astronaut, astronaut, "euclidean").max(),
    )
    assert cross[0, 0] > 0.6  # the two original photos
    assert cross.mean() > 0.6
    assert cross.min() > same + 0.2  # a clear gap for clustering to find


def test_crop_size_does_not_change_who_it_is() -> None:
    big = dlib_embedder().embed([identity_crops(160)["grace"]["original"]])
    small = identity_embeddings()["grace"][:1]
    assert embedding_distances(big, small, "euclidean")[0, 0] < 0.2


def test_embedding_nothing_gives_an_empty_matrix() -> None:
    assert dlib_embedder().embed([]).shape == (0, 128)


def test_grey_or_float_crops_are_refused_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match="RGB uint8"):
        dlib_embedder().embed([np.zeros((112, 112), np.uint8)])
    with pytest.raises(ValueError, match="RGB uint8"):
        dlib_embedder().embed([np.zeros((112, 112, 3), np.float32)])


def test_make_embedder_builds_dlib_by_default_and_explains_bad_choices() -> None:
    embedder = make_embedder()
    assert isinstance(embedder, DlibEmbedder)
    assert (embedder.dim, embedder.metric, embedder.same_person_distance) == (128, "euclidean", 0.6)
    with pytest.raises(ValueError, match="onnx_path"):
        make_embedder("onnx")
    with pytest.raises(ValueError, match="unknown embedder"):
        make_embedder("facenet")
