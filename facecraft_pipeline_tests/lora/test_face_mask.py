"""The face-weighted loss: the mask sits where the face box is, follows flips, and weights the error there."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from facecraft_pipeline.lora import BaseModel, Example, LoraSettings, load_pipeline, weighted_mse
from facecraft_pipeline.lora.batches import TrainingBatches, face_weights

BOX = (8.0, 16.0, 32.0, 48.0)  # left half of a 64 px image


def test_the_mask_is_one_on_the_face_and_one_minus_strength_elsewhere() -> None:
    weights = face_weights([BOX, None], image_side=64, latent_side=32, strength=0.75, grow=1.0)[:, 0]

    assert weights.shape == (2, 32, 32)
    assert weights[0, 16, 10] == 1.0  # the face box's centre (latent px)
    assert weights[0, 2, 30] == pytest.approx(0.25) and weights[0, 16, 28] == pytest.approx(0.25)
    assert torch.equal(weights[1], torch.ones(32, 32))  # no face box: plain MSE


def test_error_off_the_face_costs_nothing_at_full_strength_and_error_on_it_does() -> None:
    weights = face_weights([BOX], 64, 32, strength=1.0, grow=1.0)
    target = torch.zeros(1, 4, 32, 32)
    off_face, on_face = target.clone(), target.clone()
    off_face[..., :, 24:] = 1.0  # the right quarter: no face there
    on_face[..., 12:20, 6:14] = 1.0

    assert float(weighted_mse(off_face, target, weights)) == 0.0
    assert float(weighted_mse(on_face, target, weights)) > 0.3
    plain = face_weights([BOX], 64, 32, strength=0.0, grow=1.0)
    assert torch.allclose(weighted_mse(off_face, target, plain), weighted_mse(off_face, target, None))


def test_the_trainer_batches_carry_the_mask_of_each_image_mirrored_with_it(tiny_base: BaseModel, face_images: list[Path]) -> None:
    pipe = load_pipeline(tiny_base)
    examples = [Example(p, "photo of sks person", face_box=BOX) for p in face_images[:2]]
    settings = LoraSettings(face_loss_strength=1.0, face_mask_grow=1.0, random_flip=True, batch_size=8)
    expected = face_weights([BOX], 64, 32, 1.0, 1.0)[0]
    batches = TrainingBatches(pipe, examples, settings, torch.float32, torch.Generator().manual_seed(0), train_text=False)

    weights = batches(0).weights
    assert weights is not None and weights.shape == (8, 1, 32, 32)
    kinds = {("plain" if torch.equal(w, expected) else "mirrored" if torch.equal(w, expected.flip(-1)) else "other") for w in weights}
    assert kinds == {"plain", "mirrored"}
    none = TrainingBatches(pipe, examples, replace(settings, face_loss_strength=0.0), torch.float32, torch.Generator(), False)
    assert none(0).weights is None


def test_other_peoples_faces_weigh_nothing_and_the_owners_face_keeps_its_weight_where_they_overlap() -> None:
    other = (40.0, 16.0, 60.0, 40.0)  # right of the owner's face
    weights = face_weights([BOX, None], 64, 32, strength=0.5, grow=1.0, others=[[other], [other]])[:, 0]
    alone = face_weights([BOX], 64, 32, strength=0.5, grow=1.0)[0, 0]

    assert weights[0, 14, 25] == 0.0 and weights[1, 14, 25] == 0.0  # the other face's centre, with or without an owner box
    assert weights[0, 16, 10] == 1.0 and weights[1, 2, 2] == 1.0  # the owner's face; the background of a box-less image
    assert torch.equal(weights[0, :, :16], alone[:, :16])  # the owner's half is untouched
    overlapping = face_weights([BOX], 64, 32, strength=1.0, grow=1.0, others=[[BOX]])[0, 0]
    assert overlapping[16, 10] == 1.0  # a box that is the owner's own keeps its weight


def test_the_batches_mask_other_faces_unless_told_not_to(tiny_base: BaseModel, face_images: list[Path]) -> None:
    pipe = load_pipeline(tiny_base)
    examples = [Example(p, "photo of sks person", face_box=BOX, other_faces=((40.0, 16.0, 60.0, 40.0),)) for p in face_images[:2]]
    settings = LoraSettings(batch_size=2)

    masked = TrainingBatches(pipe, examples, settings, torch.float32, torch.Generator().manual_seed(0), train_text=False)
    plain = TrainingBatches(pipe, examples, replace(settings, mask_other_faces=False), torch.float32, torch.Generator(), False)

    assert masked(0).weights is not None and float(masked(0).weights[:, 0, 14, 25].max()) == 0.0
    assert plain(0).weights is None
