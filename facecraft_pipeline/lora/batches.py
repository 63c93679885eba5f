"""Per-step training inputs (scaled VAE latents + prompt embeddings), optionally precomputed once.

Caching encodes each image (and its mirror, with flips on) once and keeps the latent
distribution, so every step still draws a fresh latent sample, as the uncached loop does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from facecraft_pipeline.lora.settings import LoraSettings

if TYPE_CHECKING:
    from diffusers import StableDiffusionPipeline


class TrainingBatches:
    """Deterministic per step: the images of step s depend only on (seed, s); noise comes from `generator`."""

    def __init__(
        self,
        pipe: StableDiffusionPipeline,
        pixels: torch.Tensor,
        settings: LoraSettings,
        dtype: torch.dtype,
        generator: torch.Generator,
    ):
        self.pipe, self.pixels, self.settings, self.dtype, self.generator = pipe, pixels, settings, dtype, generator
        self.device = pipe.unet.device
        self.scaling = pipe.vae.config.scaling_factor
        self._prompt: torch.Tensor | None = None
        self._cached: list[torch.Tensor] | None = None  # [mean|logvar params] per orientation
        if settings.cache_latents:
            self._prompt = self._encode_prompt()
            orientations = [pixels, pixels.flip(-1)] if settings.random_flip else [pixels]
            self._cached = [self._encode_parameters(batch) for batch in orientations]

    def __call__(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(latents, encoder_hidden_states) for 0-based training step `step`."""
        index = self._indices(step)
        flip = (
            torch.rand(len(index), generator=self.generator) < 0.5
            if self.settings.random_flip
            else torch.zeros(len(index), dtype=torch.bool)
        )
        if self._cached is not None:
            params = torch.stack([self._cached[int(f)][i] for i, f in zip(index.tolist(), flip.tolist(), strict=True)])
        else:
            pixels = self.pixels[index]
            pixels = torch.where(flip[:, None, None, None], pixels.flip(-1), pixels)
            params = self._encode_parameters(pixels)
        mean, logvar = params.float().chunk(2, dim=1)
        std = torch.exp(0.5 * logvar.clamp(-30.0, 20.0))
        sample = mean + std * torch.randn(mean.shape, generator=self.generator).to(self.device)
        latents = (sample * self.scaling).to(self.dtype)
        prompt = self._prompt if self._prompt is not None else self._encode_prompt()
        return latents, prompt.expand(len(index), -1, -1)

    def _indices(self, step: int) -> torch.Tensor:
        """Epoch-wise shuffles of the dataset, concatenated; the batch of a step needs no carried state."""
        count, size = len(self.pixels), self.settings.batch_size
        positions = range(step * size, (step + 1) * size)
        perms: dict[int, torch.Tensor] = {}
        out = []
        for position in positions:
            epoch, offset = divmod(position, count)
            if epoch not in perms:
                perms[epoch] = torch.randperm(
                    count, generator=torch.Generator().manual_seed(self.settings.run.seed * 1_000_003 + epoch)
                )
            out.append(int(perms[epoch][offset]))
        return torch.tensor(out)

    @torch.no_grad()
    def _encode_parameters(self, pixels: torch.Tensor) -> torch.Tensor:
        vae = self.pipe.vae
        parts = [
            vae.encode(chunk.to(self.device, vae.dtype)).latent_dist.parameters
            for chunk in pixels.split(max(self.settings.batch_size, 1))
        ]
        return torch.cat(parts)

    @torch.no_grad()
    def _encode_prompt(self) -> torch.Tensor:
        tokenizer, encoder = self.pipe.tokenizer, self.pipe.text_encoder
        ids = tokenizer(
            self.settings.instance_prompt,
            padding="max_length",
            max_length=tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        ).input_ids
        return encoder(ids.to(self.device), return_dict=False)[0].to(self.dtype)
