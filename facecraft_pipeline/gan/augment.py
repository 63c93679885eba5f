"""Augmentations for small face sets: flips of real images, and DiffAugment for D's inputs.

DiffAugment (Zhao et al. 2020; color, translation, cutout) applies the same kind of random, differentiable transform to real
and fake images before D, so D cannot memorise a few hundred faces and G is not taught to
produce the augmentations. All randomness comes from the given generator (resumable, seeded).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def random_flip(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2."""
    mask = torch.rand(x.shape[0], 1, 1, 1, device=x.device, generator=generator) < 0.5
    return torch.where(mask, x.flip(3), x)


def _rand(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype, generator=generator)


def color(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random brightness (+-0.5), saturation (x0..2) and contrast (x0.5..1.5) per image."""
    x = x + (_rand(x, generator) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_rand(x, generator) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_rand(x, generator) + 0.5) + mean


def translation(x: torch.Tensor, generator: torch.Generator | None = None, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to `ratio` of its side, filling with zeros (mid-grey)."""
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = torch.randint(-sh, sh + 1, (n, 1, 1), device=x.device, generator=generator)
    tx = torch.randint(-sw, sw + 1, (n, 1, 1), device=x.device, generator=generator)
    gy, gx = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
    gy = (gy[None] + ty + 1).clamp(0, h + 1)
    gx = (gx[None] + tx + 1).clamp(0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)
    return padded[torch.arange(n, device=x.device)[:, None, None], gy, gx].permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, generator: torch.Generator | None = None, ratio: float = 0.5) -> torch.Tensor:
    """Zero (mid-grey) one square of `ratio` of the side at a random place per image (DiffAugment's cutout)."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device, generator=generator)
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device, generator=generator)
    gy = torch.arange(h, device=x.device)[None, :, None]
    gx = torch.arange(w, device=x.device)[None, None, :]
    y0, x0 = cy - ch // 2, cx - cw // 2
    inside = (gy >= y0) & (gy < y0 + ch) & (gx >= x0) & (gx < x0 + cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


def flip(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    return x.flip(3)


OPS = {"color": color, "translation": translation, "cutout": cutout}
ADA_OPS = {"flip": flip, **OPS}


def diff_augment(x: torch.Tensor, ops: Sequence[str], generator: torch.Generator | None = None) -> torch.Tensor:
    """Apply the named ops in order; with no ops, x itself."""
    for op in ops:
        x = OPS[op](x, generator)
    return x


def adaptive_augment(x: torch.Tensor, ops: Sequence[str], p: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """ADA-style: each op is applied to each image with probability `p` (a 0-dim tensor: no host sync)."""
    for op in ops:
        mask = torch.rand(x.shape[0], 1, 1, 1, device=x.device, generator=generator) < p
        x = torch.where(mask, ADA_OPS[op](x, generator), x)
    return x
