"""GAN objectives: non-saturating BCE (DCGAN) and Wasserstein with gradient penalty (WGAN-GP)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def dcgan_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """BCE for D with one-sided label smoothing (real target 1 - s; fakes stay 0, Salimans et al. 2016)."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, 1.0 - label_smoothing))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def dcgan_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating G loss: -log D(G(z)), which keeps gradients alive when D wins early."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def wgan_d_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Critic loss without the penalty: E[D(fake)] - E[D(real)] (minus the Wasserstein estimate)."""
    return fake_scores.mean() - real_scores.mean()


def wgan_g_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    return -fake_scores.mean()


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """E[(||grad_x D(x)||_2 - 1)^2] at random points between real and fake (unweighted by lambda).

    Built with create_graph=True, so backpropagating it trains the critic (double backward).
    """
    eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device, generator=generator)
    mixed = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    scores = critic(mixed)
    (grad,) = torch.autograd.grad(scores.float().sum(), mixed, create_graph=True)
    return ((grad.float().flatten(1).norm(2, dim=1) - 1) ** 2).mean()
