"""DCGAN-shaped generator and discriminator/critic that grow one block per doubling of resolution.

Channel rule (as in the DCGAN paper at 64 px): the block at side `r` has
`base_channels * min(8, resolution // (2 * r))` channels, so every resolution keeps the familiar
shape and 256 px does not explode to thousands of channels at 4x4.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from facecraft_pipeline.gan.settings import GanSettings

MAX_MULT = 8


def _channels(settings: GanSettings, side: int) -> int:
    return settings.base_channels * min(MAX_MULT, settings.resolution // (2 * side))


def _sides(resolution: int) -> list[int]:
    """Feature-map sides between 4 and resolution / 2: [4, 8, ..., resolution // 2]."""
    return [2**i for i in range(2, int(math.log2(resolution)))]


class Generator(nn.Module):
    """z (N, latent_dim) -> image (N, 3, R, R) in [-1, 1]: transposed convs, BatchNorm, ReLU, tanh."""

    def __init__(self, settings: GanSettings) -> None:
        super().__init__()
        self.latent_dim = settings.latent_dim
        self.resolution = settings.resolution
        sides = _sides(settings.resolution)
        c = _channels(settings, 4)
        layers: list[nn.Module] = [nn.ConvTranspose2d(settings.latent_dim, c, 4, 1, 0, bias=False),
                                   nn.BatchNorm2d(c), nn.ReLU(True)]
        for side in sides[1:]:
            c_next = _channels(settings, side)
            layers += [nn.ConvTranspose2d(c, c_next, 4, 2, 1, bias=False), nn.BatchNorm2d(c_next), nn.ReLU(True)]
            c = c_next
        layers += [nn.ConvTranspose2d(c, 3, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z.view(z.shape[0], self.latent_dim, 1, 1))


class Discriminator(nn.Module):
    """image (N, 3, R, R) -> one logit/score per image: strided convs, LeakyReLU(0.2).

    `norm` is "batch" for DCGAN and "layer" for the WGAN-GP critic: the gradient penalty is taken
    per sample, so the critic must not mix samples as BatchNorm does; GroupNorm(1, C) normalises
    each sample over (C, H, W), i.e. LayerNorm, as in Gulrajani et al.
    """

    def __init__(self, settings: GanSettings, norm: str) -> None:
        super().__init__()
        sides = _sides(settings.resolution)[::-1]  # resolution / 2 ... 4
        c = _channels(settings, sides[0])
        layers: list[nn.Module] = [nn.Conv2d(3, c, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        for side in sides[1:]:
            c_next = _channels(settings, side)
            norm_layer = nn.BatchNorm2d(c_next) if norm == "batch" else nn.GroupNorm(1, c_next)
            layers += [nn.Conv2d(c, c_next, 4, 2, 1, bias=False), norm_layer, nn.LeakyReLU(0.2, True)]
            c = c_next
        layers += [nn.Conv2d(c, 1, 4, 1, 0, bias=False)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten()


def init_weights(module: nn.Module, generator: torch.Generator) -> None:
    """DCGAN init (conv ~ N(0, 0.02), norm scale ~ N(1, 0.02)), drawn from `generator` so it is seeded."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(m.weight, 0.0, 0.02, generator=generator)
        elif isinstance(m, nn.BatchNorm2d | nn.GroupNorm):
            nn.init.normal_(m.weight, 1.0, 0.02, generator=generator)
            nn.init.zeros_(m.bias)


def build_generator(settings: GanSettings) -> Generator:
    generator = Generator(settings)
    init_weights(generator, torch.Generator().manual_seed(settings.run.seed))
    return generator


def build_discriminator(settings: GanSettings) -> Discriminator:
    discriminator = Discriminator(settings, norm="batch" if settings.kind == "dcgan" else "layer")
    init_weights(discriminator, torch.Generator().manual_seed(settings.run.seed + 1))
    return discriminator
