"""Rectified flow, as FLUX.1 and SD3 are trained: x_t = (1 - sigma) x0 + sigma noise, target noise - x0.

sigma is drawn logit-normal (SD3 paper: sigmoid of N(mean, std), most draws mid-way) or uniform,
then shifted towards noise by `shift` (sigma' = shift sigma / (1 + (shift - 1) sigma)), as the
FlowMatchEulerDiscreteScheduler's static shift does at sampling time. The denoiser takes sigma
itself as its timestep (FluxPipeline passes t / 1000 with t = 1000 sigma).
"""

from __future__ import annotations

import torch

SAMPLINGS = ("logit_normal", "uniform")


def sample_sigmas(count: int, generator: torch.Generator, device: torch.device, sampling: str = "logit_normal",
                  mean: float = 0.0, std: float = 1.0, shift: float = 1.0) -> torch.Tensor:
    """(count,) noise levels in (0, 1), fp32, drawn from `generator` on `device`."""
    if sampling == "logit_normal":
        u = torch.sigmoid(mean + std * torch.randn(count, generator=generator, device=device))
    elif sampling == "uniform":
        u = torch.rand(count, generator=generator, device=device)
    else:
        raise ValueError(f"timestep_sampling must be one of {', '.join(SAMPLINGS)}, got {sampling!r}")
    return shift * u / (1 + (shift - 1) * u)


def noisy_latents(latents: torch.Tensor, noise: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """x_t on the straight line from the data (sigma 0) to the noise (sigma 1)."""
    s = sigmas.view(-1, *([1] * (latents.dim() - 1))).to(latents.dtype)
    return (1 - s) * latents + s * noise


def velocity(latents: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """What the denoiser predicts: dx_t / dsigma = noise - x0."""
    return noise - latents
