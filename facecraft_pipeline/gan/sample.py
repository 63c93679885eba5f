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


def fixed_latents(generator: nn.Module, n: int, seed: int) -> torch.Tensor:
    """The fixed latent batch of a seed, drawn on the CPU: the same faces on any device."""
    return torch.randn(n, int(generator.latent_dim), generator=torch.Generator().manual_seed(seed))  # type: ignore[arg-type]


@torch.no_grad()
def render(generator: nn.Module, z: torch.Tensor, controls: torch.Tensor | None = None) -> list[Image.Image]:
    """Images of the latents `z` (and controls) in eval mode, on the generator's device."""
    device = next(generator.parameters()).device
    was_training = generator.training
    generator.eval()
    try:
        images = generator(z.to(device), None if controls is None else controls.to(device))
    finally:
        generator.train(was_training)
    return [Image.fromarray(array) for array in to_uint8(images)]


def sample_images(generator: nn.Module, n: int, seed: int, device: torch.device | str | None = None) -> list[Image.Image]:
    """n images of the seed's fixed latent batch (controls at their default), in eval mode: the same
    faces on any device. `device` is where the generator's weights are (found from them when None)."""
    return render(generator, fixed_latents(generator, n, seed))


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation (Gaussian latents keep their norm); t broadcast over the rows."""
    a_n, b_n = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((a_n * b_n).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    return torch.sin((1 - t) * omega) / so * a + torch.sin(t * omega) / so * b


def interpolation_latents(generator: nn.Module, seed: int, rows: int, columns: int, two_d: bool = False) -> torch.Tensor:
    """1D: `rows` pairs of seeded latents, each row walking from one to the other in `columns` steps.
    2D: four seeded corners, bilinear over a rows x columns sheet (slerp along both axes)."""
    t = torch.linspace(0, 1, columns)[:, None]
    if not two_d:
        ends = fixed_latents(generator, 2 * rows, seed)
        return torch.cat([slerp(ends[2 * r][None], ends[2 * r + 1][None], t) for r in range(rows)])
    c = fixed_latents(generator, 4, seed)
    left, right = slerp(c[0][None], c[2][None], torch.linspace(0, 1, rows)[:, None]), slerp(c[1][None], c[3][None],
                                                                                           torch.linspace(0, 1, rows)[:, None])
    return torch.cat([slerp(left[r][None], right[r][None], t) for r in range(rows)])


def interpolation_sheet(generator: nn.Module, path: Path, seed: int, rows: int = 4, columns: int = 8, two_d: bool = False) -> Path:
    """A sheet of latent interpolations (see `interpolation_latents`), one row per line of the sheet."""
    images = render(generator, interpolation_latents(generator, seed, rows, columns, two_d))
    cell = max(64, images[0].width)
    grid = make_grid(images, cols=columns, cell=cell)
    with atomic_path(path) as tmp:
        grid.save(tmp, format=_format(path))
    return path


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
