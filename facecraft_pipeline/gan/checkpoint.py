"""Reading GAN checkpoints: the generator (EMA weights if present) rebuilt from the stored settings.

A checkpoint is the training state `GanTrainer.state_dict` returns plus the loop's `run` entry:
  format, settings, data_digest, steps_done, G, G_ema (absent when ema_decay == 0), D, opt_g, opt_d,
  scaler_g, scaler_d, rng, ada, replay (when on), run.
Every kept checkpoint of a run loads the same way, which is what the evaluation sweep relies on;
a checkpoint taken mid-way through progressive growing loads at its stage (still R x R output).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from facecraft_pipeline.gan.grow import stage_at
from facecraft_pipeline.gan.models import Generator
from facecraft_pipeline.gan.settings import GanSettings
from facecraft_pipeline.training.checkpoints import read_state, state_is_finite

FORMAT = 3


def read_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    state = read_state(path, device)
    if state.get("format") != FORMAT:
        raise ValueError(f"{path} is not a FaceCraft GAN checkpoint of format {FORMAT} (found {state.get('format')!r})")
    return state


def checkpoint_is_finite(checkpoint: Path) -> bool:
    return state_is_finite(read_checkpoint(checkpoint))


def load_generator(checkpoint: Path, device: torch.device | str = "cpu", ema: bool = True) -> Generator:
    """G rebuilt from the settings stored in the checkpoint, in eval mode (the EMA weights if present)."""
    state = read_checkpoint(checkpoint, device)
    settings = GanSettings.from_dict(state["settings"])
    weights = state["G_ema"] if ema and "G_ema" in state else state["G"]
    bank = weights.get("owner.vectors")  # identity-conditioned: the owner's embeddings G draws by default
    generator = Generator(settings, *((bank.shape[1], bank.shape[0], weights["people"].shape[0]) if bank is not None else ()))
    generator.load_state_dict(weights)
    generator.people_names = list(state.get("people_names", []))
    generator.set_stage(stage_at(settings, max(int(state["steps_done"]) - 1, 0)).side)  # the stage its last step trained
    return generator.to(device).eval()
