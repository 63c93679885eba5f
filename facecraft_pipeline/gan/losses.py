"""GAN objectives: non-saturating BCE (DCGAN), hinge (SNGAN/SAGAN), Wasserstein with gradient
penalty (WGAN-GP), and the R1 penalty on real images (Mescheder et al. 2018)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def dcgan_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, label_smoothing: float = 0.0,
                 flip_rate: float = 0.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """BCE for D with one-sided label smoothing (real target 1 - s; fakes stay 0, Salimans et al. 2016)
    and random label flips: each label is swapped (real <-> fake) with probability `flip_rate`."""
    real_target = torch.full_like(real_logits, 1.0 - label_smoothing)
    fake_target = torch.zeros_like(fake_logits)
    if flip_rate > 0:
        real_target = torch.where(flip_mask(real_logits, flip_rate, generator), 0.0, real_target)
        fake_target = torch.where(flip_mask(fake_logits, flip_rate, generator), 1.0 - label_smoothing, fake_target)
    return F.binary_cross_entropy_with_logits(real_logits, real_target) + F.binary_cross_entropy_with_logits(fake_logits, fake_target)


def flip_mask(logits: torch.Tensor, rate: float, generator: torch.Generator | None) -> torch.Tensor:
    return torch.rand(logits.shape, device=logits.device, generator=generator) < rate


def dcgan_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating G loss: -log D(G(z)), which keeps gradients alive when D wins early."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def hinge_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """E[max(0, 1 - D(real))] + E[max(0, 1 + D(fake))]."""
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def hinge_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    return -fake_logits.mean()


def wgan_d_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Critic loss without the penalty: E[D(fake)] - E[D(real)] (minus the Wasserstein estimate)."""
    return fake_scores.mean() - real_scores.mean()


def wgan_g_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    return -fake_scores.mean()


REAL_LOSSES = {  # D's loss term on real images alone: on held-out faces beside training faces it shows overfitting
    "bce": lambda logits: F.softplus(-logits).mean(),
    "hinge": lambda logits: F.relu(1.0 - logits).mean(),
    "wgan": lambda scores: -scores.mean(),
}
D_LOSSES = {"bce": dcgan_d_loss, "hinge": hinge_d_loss, "wgan": wgan_d_loss}
G_LOSSES = {"bce": dcgan_g_loss, "hinge": hinge_g_loss, "wgan": wgan_g_loss}


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     generator: torch.Generator | None = None, eps: torch.Tensor | None = None) -> torch.Tensor:
    """E[(||grad_x D(x)||_2 - 1)^2] at random points between real and fake (unweighted by lambda).

    Built with create_graph=True, so backpropagating it trains the critic (double backward).
    `eps` (N, 1, 1, 1): the interpolation weights, when the caller drew them (data-parallel slices).
    """
    if eps is None:
        eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device, generator=generator)
    mixed = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    scores = critic(mixed)
    (grad,) = torch.autograd.grad(scores.float().sum(), mixed, create_graph=True)
    return ((grad.float().flatten(1).norm(2, dim=1) - 1) ** 2).mean()


def r1_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor) -> torch.Tensor:
    """E[||grad_x D(x)||_2^2] on real images (unweighted by gamma / 2), by double backward."""
    real = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(real).float().sum(), real, create_graph=True)
    return grad.float().flatten(1).pow(2).sum(1).mean()
