"""Fixed-seed samples, grids and the training GIF."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image
from torch import nn

from facecraft_pipeline.atomic import atomic_path
from facecraft_pipeline.training.images import to_uint8
from facecraft_pipeline.grids import make_grid


@torch.no_grad()
def sample_images(generator: nn.Module, n: int, seed: int, device: torch.device | str | None = None) -> list[Image.Image]:
    """n images from latents drawn on the CPU with `seed`: the same faces on any device, in eval mode.

    `device` defaults to where the generator's weights are.
    """
    device = torch.device(device) if device is not None else next(generator.parameters()).device
    latent_dim = int(generator.latent_dim)  # type: ignore[arg-type]
    z = torch.randn(n, latent_dim, generator=torch.Generator().manual_seed(seed)).to(device)
    was_training = generator.training
    generator.eval()
    try:
        images = generator(z)
    finally:
        generator.train(was_training)
    return [Image.fromarray(array) for array in to_uint8(images)]


def write_grid(images: Sequence[Image.Image], path: Path) -> Path:
    """Save a sample grid; tiny models are shown at 64 px so a 16 px face is still visible."""
    cell = max(64, images[0].width)
    grid = make_grid(images, cell=cell)
    with atomic_path(path) as tmp:
        grid.save(tmp, format=_format(path))
    return path


def write_gif(frames: Sequence[Path], path: Path, ms_per_frame: int = 300) -> Path | None:
    """Animate the per-step grids (in the order given); None when there are none."""
    if not frames:
        return None
    images = [Image.open(frame).convert("RGB") for frame in frames]
    with atomic_path(path) as tmp:
        images[0].save(tmp, format=_format(path), save_all=True, append_images=images[1:], duration=ms_per_frame, loop=0)
    return path


def _format(path: Path) -> str:
    """PIL's format for `path`'s suffix (the temporary file's ".tmp" would not tell it)."""
    return Image.registered_extensions()[path.suffix.lower()]
