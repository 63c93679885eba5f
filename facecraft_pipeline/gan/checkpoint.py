"""checkpoint.pt: written atomically, readable with torch.load(weights_only=True).

Only tensors, numbers, strings, None and plain containers go in (settings as a dict, RNG state
as a tensor), so loading never unpickles arbitrary objects. Keys:
  format, step, settings, data_digest, device, dtype, metrics, seconds, images_seen,
  G, G_ema (absent when ema_decay == 0), D, opt_g, opt_d, scaler_g, scaler_d, rng.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from facecraft_pipeline.atomic import atomic_path
from facecraft_pipeline.gan.models import Generator
from facecraft_pipeline.gan.settings import GanSettings

FORMAT = 1


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Written atomically: a crash never leaves half a file."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def read_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    state = torch.load(path, map_location=device, weights_only=True)
    if state.get("format") != FORMAT:
        raise ValueError(f"{path} is not a FaceCraft GAN checkpoint (format {state.get('format')!r})")
    return state


def _tensors(value: object) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _tensors(item)


def state_is_finite(state: dict[str, Any]) -> bool:
    """True when every floating-point tensor anywhere in the state (weights, Adam moments) is finite."""
    return all(bool(torch.isfinite(t).all()) for t in _tensors(state) if t.is_floating_point())


def checkpoint_is_finite(checkpoint: Path) -> bool:
    return state_is_finite(read_checkpoint(checkpoint))


def load_generator(checkpoint: Path, device: torch.device | str = "cpu", ema: bool = True) -> nn.Module:
    """G rebuilt from the settings stored in the checkpoint, in eval mode (the EMA weights if present)."""
    state = read_checkpoint(checkpoint, device)
    generator = Generator(GanSettings.from_dict(state["settings"]))
    generator.load_state_dict(state["G_ema"] if ema and "G_ema" in state else state["G"])
    return generator.to(device).eval()
