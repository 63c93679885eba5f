"""Stabilising tricks around D: instance noise with a schedule, a replay buffer of earlier fakes,
and the ADA controller. Each is a small object whose state the trainer checkpoints; none syncs
with the host inside a step (the ADA probability and the buffer live on the device)."""

from __future__ import annotations

import math
from typing import Any

import torch

from facecraft_pipeline.gan.settings import AdaSettings, TrickSettings


def instance_noise_std(tricks: TrickSettings, step: int) -> float:
    """The std of the Gaussian noise added to D's real and fake inputs at `step` (Sonderby et al. 2016)."""
    if tricks.instance_noise <= 0 or (tricks.noise_off_after and step >= tricks.noise_off_after):
        return 0.0
    if tricks.noise_schedule == "constant":
        return tricks.instance_noise
    phase = step / tricks.noise_steps
    if tricks.noise_schedule == "linear":
        return tricks.instance_noise * max(0.0, 1.0 - phase)
    return tricks.instance_noise * (1.0 - (phase - math.floor(phase)))  # cyclic: decays, then restarts


class ReplayBuffer:
    """A ring of earlier fakes (Shrivastava et al. 2017): D also sees what G drew a while ago, so G
    cannot win by hopping between modes D has forgotten."""

    def __init__(self, size: int, shape: tuple[int, ...], device: torch.device, dtype: torch.dtype = torch.float32) -> None:
        self.images = torch.zeros((size, *shape), device=device, dtype=dtype)
        self.filled = 0  # a host-side count: deterministic, no sync needed

    def mix(self, fakes: torch.Tensor, share: float, generator: torch.Generator) -> torch.Tensor:
        """`fakes` with round(share * N) of them replaced by stored ones, then the new fakes stored."""
        n = fakes.shape[0]
        k = min(round(share * n), self.filled)
        out = fakes
        if k > 0:
            picks = torch.randint(self.filled, (k,), device=fakes.device, generator=generator)
            out = torch.cat([fakes[: n - k], self.images[picks].to(fakes.dtype)])
        self.push(fakes.detach())
        return out

    def push(self, fakes: torch.Tensor) -> None:
        size, n = self.images.shape[0], fakes.shape[0]
        if self.filled < size:
            take = min(n, size - self.filled)
            self.images[self.filled:self.filled + take] = fakes[:take].to(self.images.dtype)
            self.filled += take
            fakes = fakes[take:]
        if fakes.shape[0]:
            slots = (torch.arange(fakes.shape[0], device=fakes.device) * 7919 + self.filled * 31) % size  # spread, deterministic
            self.images[slots] = fakes.to(self.images.dtype)
            self.filled = size

    def state_dict(self) -> dict[str, Any]:
        return {"images": self.images, "filled": self.filled}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.images.copy_(state["images"])
        self.filled = int(state["filled"])


class AdaController:
    """p of the adaptive augmentation: every `interval` steps p moves by sign(r_t - target) * speed,
    with r_t = E[sign(D(real))] over the interval (Karras et al. 2020). Everything on the device."""

    def __init__(self, ada: AdaSettings, batch_size: int, device: torch.device) -> None:
        self.ada = ada
        self.p = torch.zeros((), device=device)
        self.signs = torch.zeros((), device=device)
        self.count = 0
        self.step_size = ada.interval * batch_size / ada.speed_images

    @property
    def enabled(self) -> bool:
        return self.ada.target > 0

    def observe(self, real_logits: torch.Tensor) -> None:
        self.signs += torch.sign(real_logits.detach().float()).sum()
        self.count += real_logits.shape[0]

    def update(self, steps_done: int) -> None:
        if (steps_done + 1) % self.ada.interval or not self.count:
            return
        r_t = self.signs / self.count
        self.p.add_(torch.sign(r_t - self.ada.target) * self.step_size).clamp_(0.0, self.ada.max_p)
        self.signs.zero_()
        self.count = 0

    def r_t(self) -> torch.Tensor:
        return self.signs / max(self.count, 1)

    def state_dict(self) -> dict[str, Any]:
        return {"p": self.p, "signs": self.signs, "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.p.copy_(state["p"])
        self.signs.copy_(state["signs"])
        self.count = int(state["count"])
