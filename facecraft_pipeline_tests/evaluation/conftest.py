"""Real faces for the evaluation tests: Grace Hopper is the owner, the astronaut somebody else."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from facecraft_pipeline.evaluation import Reference
from facecraft_pipeline.faces.probe import IdentityProbe
from facecraft_pipeline_tests.faces.identity_fixtures import dlib_embedder, identity_embeddings, photo, vary

HELD_OUT = ("original", "dark", "half")  # the owner's "held-out photos" in these tests


def photo_image(person: str, variation: str) -> Image.Image:
    return Image.fromarray(vary(photo(person), variation))


@pytest.fixture(scope="session")
def face_tools():
    """(the pipeline's default identity probe: HOG detector, dlib's embedder; a reference of Grace Hopper's held-out photos)."""
    from facecraft_pipeline_tests.faces.identity_fixtures import VARIATIONS

    vectors = identity_embeddings()["grace"][[VARIATIONS.index(v) for v in HELD_OUT]]
    embedder = dlib_embedder()
    reference = Reference(np.asarray(vectors), embedder.metric, embedder.same_person_distance, embedder.name)
    return IdentityProbe(embedder=embedder), reference
