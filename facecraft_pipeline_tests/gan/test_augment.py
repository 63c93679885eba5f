from __future__ import annotations

import torch

from facecraft_pipeline.gan.augment import diff_augment, random_flip


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
