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


def test_cutout_blanks_one_square_of_half_the_side_per_image() -> None:
    x = torch.ones(16, 3, 16, 16)
    out = diff_augment(x, ["cutout"], torch.Generator().manual_seed(0))
    blank = (out[:, 0] == 0).flatten(1).sum(1)
    assert (blank > 0).all() and (blank <= 64).all()  # an 8x8 square, clipped at the border
    assert (out[:, 0] == out[:, 1]).all()  # the same square in every channel
    assert len({int(b) for b in blank}) > 1 or not torch.equal(out[0], out[1])  # placed at random


def test_adaptive_augment_applies_each_op_at_probability_p() -> None:
    from facecraft_pipeline.gan.augment import adaptive_augment

    x = torch.randn(4000, 1, 4, 4)
    for p, low, high in ((0.0, 0, 0), (0.3, 0.25, 0.35), (1.0, 1, 1)):
        out = adaptive_augment(x, ["flip"], torch.tensor(p), torch.Generator().manual_seed(0))
        changed = (out != x).flatten(1).any(1).float().mean().item()
        assert low <= changed <= high
