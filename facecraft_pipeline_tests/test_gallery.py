"""Galleries: identity scores on real faces, the champion rule, and the written report."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib import cbook
from PIL import Image
from skimage import data as samples

from facecraft_pipeline.faces.align import align_face
from facecraft_pipeline.faces.detect import DetectorSettings, make_detector
from facecraft_pipeline.faces.embed import DlibEmbedder
from facecraft_pipeline.faces.identity_score import IdentityScore, score_identity
from facecraft_pipeline.gallery import GallerySettings, choose_champion, load_gallery, render_gallery


@pytest.fixture(scope="module")
def faces():
    hopper = Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB")
    astronaut = Image.fromarray(samples.astronaut())
    detector = make_detector(DetectorSettings())
    embedder = DlibEmbedder()
    (face,) = detector.detect([np.asarray(astronaut)])[0]
    owner = embedder.embed([align_face(np.asarray(astronaut), face.landmarks, 112)])[0]  # the owner here: the astronaut
    return hopper, astronaut, detector, embedder, owner


def test_generated_images_of_the_owner_score_higher_than_someone_else(faces):
    hopper, astronaut, detector, embedder, owner = faces
    small = astronaut.resize((200, 200))  # generated samples are small: the scorer upscales them
    mine = score_identity([small, astronaut.transpose(Image.Transpose.FLIP_LEFT_RIGHT)], detector, embedder, owner)
    theirs = score_identity([hopper], detector, embedder, owner)
    assert mine.faces == 2 and theirs.faces == 1
    assert mine.min > theirs.max
    assert mine.same_person_share == 1.0 and theirs.same_person_share == 0.0


def test_images_without_faces_are_counted_not_scored(faces):
    _, _, detector, embedder, owner = faces
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    score = score_identity([noise, noise], detector, embedder, owner)
    assert score == IdentityScore(images=2, faces=0)
    assert score.as_metrics("lora") == {"lora_images": 2.0, "lora_faces": 0.0}


def test_the_champion_is_the_model_most_like_the_owner_and_none_without_faces():
    assert choose_champion({"gan": IdentityScore(4, 0), "lora": IdentityScore(4, 0)})[0] is None
    scores = {"gan": IdentityScore(4, 2, 0.7, 0.6, 0.8), "lora": IdentityScore(4, 4, 0.9, 0.85, 0.95), "wgan_gp": IdentityScore(4, 0)}
    assert choose_champion(scores)[0] == "lora"


def test_render_gallery_samples_every_model_with_the_same_seed_and_writes_a_report(tmp_path):
    seen = []

    def sampler(colour):
        def sample(n, seed):
            seen.append((n, seed))
            return [Image.new("RGB", (32, 32), colour) for _ in range(n)]

        return sample

    gallery = render_gallery(
        {"red": sampler("red"), "blue": sampler("blue")},
        tmp_path,
        GallerySettings(samples_per_model=3, seed=7),
        scorer=lambda images: IdentityScore(images=len(images), faces=0),
        notes={"blue": "tiny random base model: images are noise"},
    )
    assert seen == [(3, 7), (3, 7)]
    assert [m.name for m in gallery.models] == ["red", "blue"] and gallery.champion is None
    assert len(list((tmp_path / "red").glob("*.png"))) == 3
    report = gallery.report.read_text()
    assert "images are noise" in report and "Champion: **none**" in report


def test_a_completed_gallery_loads_back_and_an_unfinished_one_does_not(tmp_path):
    assert load_gallery(tmp_path) is None
    scores = {"a": IdentityScore(2, 1, 0.9, 0.9, 0.9, 1.0), "b": IdentityScore(2, 0)}
    answers = iter(scores.values())
    gallery = render_gallery(
        {name: (lambda n, seed: [Image.new("RGB", (32, 32))] * n) for name in scores},
        tmp_path,
        GallerySettings(samples_per_model=2),
        scorer=lambda images: next(answers),
    )
    assert gallery.champion == "a"
    assert load_gallery(tmp_path) == gallery
