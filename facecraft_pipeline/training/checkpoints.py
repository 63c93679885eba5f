"""checkpoint-<step>.pt files: written atomically, never non-finite, pruned to keep_last + the sweep's.

A state is a dict of tensors, numbers, strings and plain containers, so `torch.load(weights_only=True)`
reads it and loading never unpickles arbitrary objects.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from facecraft_pipeline.atomic import atomic_path

_NAME = re.compile(r"^checkpoint-(\d+)\.pt$")


def checkpoint_name(step: int) -> str:
    return f"checkpoint-{step:07d}.pt"


def _tensors(value: object) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _tensors(item)


def state_is_finite(state: Any) -> bool:
    """True when every floating-point tensor anywhere in the state (weights, optimizer moments) is finite."""
    return all(bool(torch.isfinite(t).all()) for t in _tensors(state) if t.is_floating_point())


def read_state(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    return torch.load(path, map_location=device, weights_only=True)


@dataclass(frozen=True)
class Checkpoint:
    step: int
    path: Path


class Checkpoints:
    """The checkpoints of one run folder."""

    def __init__(self, folder: Path, keep_last: int, is_kept: Callable[[int], bool] = lambda step: False):
        self.folder, self.keep_last, self.is_kept = Path(folder), keep_last, is_kept

    def all(self) -> list[Checkpoint]:
        if not self.folder.is_dir():
            return []
        found = [Checkpoint(int(m.group(1)), p) for p in self.folder.iterdir() if (m := _NAME.match(p.name))]
        return sorted(found, key=lambda c: c.step)

    def save(self, step: int, state: dict[str, Any]) -> Path:
        """Write atomically, then prune. Raises FloatingPointError (writing nothing) on a non-finite state."""
        if not state_is_finite(state):
            raise FloatingPointError(f"non-finite weights at step {step}: checkpoint not written")
        path = self.folder / checkpoint_name(step)
        with atomic_path(path) as tmp:
            torch.save(state, tmp)
        self.prune()
        return path

    def prune(self) -> None:
        found = self.all()
        newest = {c.step for c in found[-self.keep_last:]}
        for c in found:
            if c.step not in newest and not self.is_kept(c.step):
                c.path.unlink(missing_ok=True)

    def latest(self, device: torch.device | str = "cpu") -> tuple[Checkpoint, dict[str, Any]] | None:
        """The newest readable checkpoint and its state (a torn or corrupt file falls back to an older one)."""
        for c in reversed(self.all()):
            try:
                return c, read_state(c.path, device)
            except Exception:  # noqa: BLE001 - a torn file fails in pickle, zip or torch in many ways
                continue
        return None

    def remove_after(self, step: int) -> None:
        for c in self.all():
            if c.step > step:
                c.path.unlink(missing_ok=True)
