from __future__ import annotations

from pathlib import Path

import pytest
import torch

from facecraft_pipeline.gan.augment import diff_augment, random_flip
from facecraft_pipeline.gan.data import dataset_digest, load_images, to_float, to_uint8


def test_images_of_any_size_and_mode_load_as_square_rgb_at_the_resolution(face_paths: list[Path]) -> None:
    images = load_images(face_paths, 32)
    assert images.shape == (len(face_paths), 3, 32, 32) and images.dtype == torch.uint8
    x = to_float(images)
    assert x.min() >= -1 and x.max() <= 1 and x.min() < -0.5 and x.max() > 0.5


def test_float_and_uint8_conversions_round_trip(face_paths: list[Path]) -> None:
    images = load_images(face_paths[:3], 16)
    assert (torch.from_numpy(to_uint8(to_float(images))).permute(0, 3, 1, 2) == images).all()


def test_no_images_is_an_error() -> None:
    with pytest.raises(ValueError, match="no training images"):
        load_images([], 16)


def test_dataset_digest_follows_content_and_order(face_paths: list[Path]) -> None:
    assert dataset_digest(face_paths[:4]) == dataset_digest(list(face_paths[:4]))
    assert dataset_digest(face_paths[:4]) != dataset_digest(face_paths[:3])
    assert dataset_digest(face_paths[:4]) != dataset_digest(face_paths[:4][::-1])


def test_flip_mirrors_some_images_and_leaves_the_others() -> None:
    x = torch.randn(64, 3, 8, 8)
    flipped = random_flip(x, torch.Generator().manual_seed(0))
    mirrored = [torch.equal(f, i.flip(2)) for f, i in zip(flipped, x, strict=True)]
    kept = [torch.equal(f, i) for f, i in zip(flipped, x, strict=True)]
    assert all(m or k for m, k in zip(mirrored, kept, strict=True))
    assert 10 < sum(mirrored) < 54


def test_diffaugment_is_seeded_differentiable_and_shape_preserving() -> None:
    x = torch.randn(4, 3, 16, 16, requires_grad=True)
    a = diff_augment(x, ["color", "translation"], torch.Generator().manual_seed(1))
    b = diff_augment(x, ["color", "translation"], torch.Generator().manual_seed(1))
    c = diff_augment(x, ["color", "translation"], torch.Generator().manual_seed(2))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert diff_augment(x, [], torch.Generator()) is x


def test_translation_moves_content_without_changing_it() -> None:
    x = torch.zeros(32, 1, 16, 16)
    x[:, :, 7, 7] = 1.0  # one bright pixel, far from the border
    shifted = diff_augment(x, ["translation"], torch.Generator().manual_seed(0))
    assert (shifted.flatten(1).sum(1) == 1).all()  # still exactly one bright pixel
    moved = (shifted[:, 0, 7, 7] == 0).sum()
    assert moved > 16
