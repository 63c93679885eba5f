"""A generator with learned-style attribute controls, following the contract the GAN upgrade will ship:
`.control_names` and `forward(z, controls)`. Here the controls shift the latent through a fixed
seeded matrix before an ordinary DCGAN generator (not learned, but the same interface and shapes)."""

from __future__ import annotations

import torch
from torch import nn

from facecraft_pipeline.gan import GanSettings, build_generator


class ControlledGenerator(nn.Module):
    control_names = ("yaw", "mouth_open", "brightness")

    def __init__(self, settings: GanSettings):
        super().__init__()
        self.inner = build_generator(settings)
        self.latent_dim, self.resolution = settings.latent_dim, settings.resolution
        weights = torch.randn(len(self.control_names), settings.latent_dim, generator=torch.Generator().manual_seed(5))
        self.register_buffer("mix", weights)

    def forward(self, z: torch.Tensor, controls: torch.Tensor) -> torch.Tensor:
        image = self.inner(z + 2.0 * controls @ self.mix)
        return (image + 0.5 * controls[:, 2:3, None, None]).clamp(-1, 1)  # "brightness"
