"""Optimizer, learning-rate schedule and EMA of the LoRA parameters."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch


def bitsandbytes_available() -> bool:
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        return False
    return True


def make_optimizer(groups: Sequence[dict], kind: str, weight_decay: float, device: torch.device) -> torch.optim.Optimizer:
    """AdamW (fused kernels on CUDA) or bitsandbytes' 8-bit AdamW (optional dependency)."""
    if kind == "adamw8bit":
        if not bitsandbytes_available():
            raise RuntimeError("optimizer adamw8bit needs bitsandbytes: pip install -c constraints.txt bitsandbytes")
        import bitsandbytes as bnb

        return bnb.optim.AdamW8bit(groups, weight_decay=weight_decay)
    return torch.optim.AdamW(groups, weight_decay=weight_decay, fused=device.type == "cuda")


def lr_lambda(kind: str, warmup: int, total: int):
    """Factor on the base lr at optimizer step `step` (0-based): linear warmup, then constant / cosine / linear decay."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        if kind == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        if kind == "linear":
            return 1.0 - progress
        return 1.0

    return factor


class Ema:
    """Exponential moving average of the LoRA parameters (fp32, on their device)."""

    def __init__(self, params: Mapping[str, torch.Tensor], decay: float):
        self.decay = decay
        self.shadow = {name: p.detach().float().clone() for name, p in params.items()}

    @torch.no_grad()
    def update(self, params: Mapping[str, torch.Tensor]) -> None:
        torch._foreach_lerp_(list(self.shadow.values()), [p.detach().float() for p in params.values()], 1.0 - self.decay)
