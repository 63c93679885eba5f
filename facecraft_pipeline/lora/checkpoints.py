"""Resumable training state (LoRA params, optimizer, RNG, step) written atomically every N steps."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from facecraft_pipeline.atomic import atomic_path

_NAME = re.compile(r"^checkpoint-(\d+)\.pt$")


@dataclass(frozen=True)
class TrainingState:
    """Everything needed to continue a run exactly where it stopped."""

    step: int
    fingerprint: str
    lora: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    scaler: dict[str, Any]
    generator: torch.Tensor
    window_losses: list[float]
    last_loss: float


def save_checkpoint(folder: Path, state: TrainingState, keep: int) -> Path:
    """Write checkpoint-<step>.pt (temp file + rename, so a crash never leaves half a file); keep the last `keep`."""
    path = folder / f"checkpoint-{state.step:07d}.pt"
    with atomic_path(path) as temporary:
        torch.save(
            {
                "step": state.step,
                "fingerprint": state.fingerprint,
                "lora": {name: tensor.detach().cpu() for name, tensor in state.lora.items()},
                "optimizer": state.optimizer,
                "scaler": state.scaler,
                "generator": state.generator,
                "window_losses": list(state.window_losses),
                "last_loss": state.last_loss,
            },
            temporary,
        )
    for old in _checkpoints(folder)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def latest_checkpoint(folder: Path, fingerprint: str, max_step: int) -> TrainingState | None:
    """The newest checkpoint of this exact run (same fingerprint) at or before `max_step`."""
    for path in reversed(_checkpoints(folder)):
        if _step(path) > max_step:
            continue
        try:
            raw = torch.load(path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, EOFError):
            continue  # unreadable: fall back to an older one
        if raw.get("fingerprint") == fingerprint:
            return TrainingState(**raw)
    return None


def remove_other_runs(folder: Path, fingerprint: str) -> None:
    """Drop checkpoints of a different run (other settings or data): they can never be resumed here."""
    for path in _checkpoints(folder):
        try:
            other = torch.load(path, map_location="cpu", weights_only=True).get("fingerprint")
        except (OSError, RuntimeError, EOFError):
            other = None
        if other != fingerprint:
            path.unlink(missing_ok=True)


def _checkpoints(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if _NAME.match(p.name)), key=_step)


def _step(path: Path) -> int:
    match = _NAME.match(path.name)
    assert match is not None
    return int(match.group(1))
