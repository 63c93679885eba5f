"""Per-step training inputs: scaled VAE latents, text conditioning, face-weight maps (+ the class images').

With `cache_latents` each image (and its mirror, with flips on) is VAE-encoded once and the latent
distribution kept, so every step still draws a fresh latent sample as the uncached loop does; the
captions (and mirrored captions) are encoded once too unless a text encoder is trained. The batch
of a step depends only on (seed, step); its random draws (flips, latent samples) come from
`generator`, which lives on the training device: with cached inputs a step copies nothing between
host and device and never waits for the GPU (the uncached path picks captions on the host).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from facecraft_pipeline.dataset.diffusion_crops import Example
from facecraft_pipeline.lora.settings import LoraSettings
from facecraft_pipeline.lora.text import Conditioning, encode
from facecraft_pipeline.training.images import load_images, to_float


@dataclass
class Batch:
    latents: torch.Tensor  # (B, C, h, w), instance rows first, then class rows
    cond: Conditioning
    weights: torch.Tensor | None  # (B, 1, h, w) face-weight map of the instance rows; None: plain MSE
    instance: int  # rows [0, instance) are the owner's, the rest class images


def face_weights(boxes: Sequence[tuple[float, ...] | None], image_side: int, latent_side: int, strength: float,
                 grow: float, others: Sequence[Sequence[tuple[float, ...]]] = ()) -> torch.Tensor:
    """(N, 1, h, w) loss weights: 1 on a soft ellipse over the (grown) face box, 1 - strength elsewhere, and 0 on
    the faces in `others[i]` (other people: the loss leaves them out) except where they overlap the owner's."""
    ys, xs = torch.meshgrid(torch.arange(latent_side) + 0.5, torch.arange(latent_side) + 0.5, indexing="ij")
    scale = latent_side / image_side

    def ellipse(box: tuple[float, ...]) -> torch.Tensor:
        x1, y1, x2, y2 = (v * scale for v in box)
        cx, cy, rx, ry = (x1 + x2) / 2, (y1 + y2) / 2, max((x2 - x1) * grow / 2, 0.5), max((y2 - y1) * grow / 2, 0.5)
        distance = ((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2
        return torch.clamp(1.5 - distance, 0, 1)  # 1 inside the ellipse, fading to 0 at 1.5x its radius^2

    maps = []
    for i, box in enumerate(boxes):
        own = ellipse(box) if box is not None else None
        weight = torch.ones(latent_side, latent_side) if own is None else (1 - strength) + strength * own
        for other in others[i] if i < len(others) else ():
            keep = 1 - ellipse(other)
            weight = weight * (keep if own is None else torch.maximum(keep, own))
        maps.append(weight)
    return torch.stack(maps)[:, None]


class TrainingBatches:
    def __init__(self, pipe, examples: Sequence[Example], settings: LoraSettings, dtype: torch.dtype,
                 generator: torch.Generator, train_text: bool, class_images: Sequence[Path] = ()):
        self.pipe, self.settings, self.dtype, self.generator, self.train_text = pipe, settings, dtype, generator, train_text
        self.device = (pipe.unet if getattr(pipe, "unet", None) is not None else pipe.transformer).device
        self.scaling = pipe.vae.config.scaling_factor
        self.shift = getattr(pipe.vae.config, "shift_factor", None) or 0.0  # FLUX.1's VAE: latents are (z - shift) * scale
        self.examples = list(examples)
        side = settings.resolution
        self.pixels = to_float(load_images([e.image for e in self.examples], side))
        latent_side = side // pipe.vae_scale_factor
        self.captions = [[e.caption for e in self.examples], [e.flipped_caption or e.caption for e in self.examples]]
        self.sizes = [e.original_size or (side, side) for e in self.examples]
        self.weights = None
        others = [e.other_faces for e in self.examples] if settings.mask_other_faces else []
        if settings.face_loss_strength > 0 or any(others):
            boxes = [e.face_box for e in self.examples]
            weights = face_weights(boxes, side, latent_side, settings.face_loss_strength, settings.face_mask_grow,
                                   others).to(self.device)
            self.weights = [weights, weights.flip(-1)]
        self.class_pixels = to_float(load_images(list(class_images), side)) if class_images else None
        self.class_captions = [settings.class_prompt] * (len(class_images))
        self._latents: list[torch.Tensor] | None = None
        self._class_latents: list[torch.Tensor] | None = None
        self._cond: list[Conditioning] | None = None
        self._class_cond: Conditioning | None = None
        self._perms: dict[tuple[int, int], torch.Tensor] = {}
        if settings.cache_latents:
            orientations = [self.pixels, self.pixels.flip(-1)] if settings.random_flip else [self.pixels]
            self._latents = [self._encode_parameters(p) for p in orientations]
            if self.class_pixels is not None:
                self._class_latents = [self._encode_parameters(self.class_pixels)]
            if not train_text:
                self._cond = [self._encode_chunks(c, self.sizes) for c in self.captions[: len(orientations)]]
                if self.class_pixels is not None:
                    self._class_cond = self._encode_chunks(self.class_captions, [(side, side)] * len(self.class_captions))

    @property
    def rows(self) -> int:
        return self.settings.batch_size * (2 if self.class_pixels is not None else 1)

    def __call__(self, step: int) -> Batch:
        """The batch of 0-based micro-step `step`."""
        index = self._indices(step, len(self.examples), 0)
        flip = (torch.rand(len(index), generator=self.generator, device=self.device) < 0.5 if self.settings.random_flip
                else torch.zeros(len(index), dtype=torch.bool, device=self.device))
        params = self._params(self.pixels, self._latents, index, flip)
        cond = self._conditioning(index, flip)
        weights = None
        if self.weights is not None:
            weights = torch.where(flip[:, None, None, None], self.weights[1][index], self.weights[0][index])
        latents = self._sample(params)
        if self.class_pixels is None:
            return Batch(latents, cond, weights, len(index))
        class_index = self._indices(step, len(self.class_pixels), 1)
        no_flip = torch.zeros(len(class_index), dtype=torch.bool, device=self.device)
        class_latents = self._sample(self._params(self.class_pixels, self._class_latents, class_index, no_flip))
        class_cond = (self._class_cond.index(class_index) if self._class_cond is not None
                      else self._encode_text([self.class_captions[i] for i in class_index.tolist()],
                                             [(self.settings.resolution,) * 2] * len(class_index)))
        return Batch(torch.cat([latents, class_latents]), Conditioning.cat([cond, class_cond]), weights, len(index))

    def _params(self, pixels, cached, index, flip) -> torch.Tensor:
        if cached is not None:
            if len(cached) == 1:
                return cached[0][index]
            return torch.where(flip[:, None, None, None], cached[1][index], cached[0][index])
        chosen, mirror = pixels[index.cpu()], flip.cpu()  # the uncached (slow) path reads pixels on the host
        return self._encode_parameters(torch.where(mirror[:, None, None, None], chosen.flip(-1), chosen))

    def _sample(self, params: torch.Tensor) -> torch.Tensor:
        mean, logvar = params.float().chunk(2, dim=1)
        std = torch.exp(0.5 * logvar.clamp(-30.0, 20.0))
        sample = mean + std * torch.randn(mean.shape, generator=self.generator, device=self.device)
        return ((sample - self.shift) * self.scaling).to(self.dtype)

    def _conditioning(self, index: torch.Tensor, flip: torch.Tensor) -> Conditioning:
        if self._cond is not None:
            if len(self._cond) == 1:
                return self._cond[0].index(index)
            return Conditioning.where(flip, self._cond[1].index(index), self._cond[0].index(index))
        rows, mirrored = index.tolist(), flip.tolist()  # captions are picked on the host: this path syncs
        captions = [self.captions[int(f)][i] for i, f in zip(rows, mirrored, strict=True)]
        return self._encode_text(captions, [self.sizes[i] for i in rows])

    def _indices(self, step: int, count: int, stream: int) -> torch.Tensor:
        """Epoch-wise shuffles of the dataset, concatenated, on the device; a step's batch needs no carried state."""
        size = self.settings.batch_size
        position, end, parts = step * size, (step + 1) * size, []
        while position < end:
            epoch, offset = divmod(position, count)
            take = min(count - offset, end - position)
            parts.append(self._permutation(epoch, count, stream)[offset:offset + take])
            position += take
        return torch.cat(parts)

    def _permutation(self, epoch: int, count: int, stream: int) -> torch.Tensor:
        key = (stream, epoch)
        if key not in self._perms:
            if len(self._perms) > 8:
                self._perms.clear()
            seed = self.settings.run.seed * 1_000_003 + epoch + stream * 7_919_113
            self._perms[key] = torch.randperm(count, generator=torch.Generator().manual_seed(seed)).to(self.device)
        return self._perms[key]

    def _encode_chunks(self, captions: Sequence[str], sizes, chunk: int = 16) -> Conditioning:
        return Conditioning.cat([self._encode_text(captions[i:i + chunk], sizes[i:i + chunk]) for i in range(0, len(captions), chunk)])

    def _encode_text(self, captions: Sequence[str], sizes) -> Conditioning:
        with torch.set_grad_enabled(self.train_text):
            return encode(self.pipe, captions, sizes, self.settings.resolution).to(self.device, self.dtype)

    @torch.no_grad()
    def _encode_parameters(self, pixels: torch.Tensor) -> torch.Tensor:
        vae = self.pipe.vae
        parts = [vae.encode(chunk.to(vae.device, vae.dtype)).latent_dist.parameters.to(self.device)
                 for chunk in pixels.split(max(self.settings.batch_size, 1))]
        return torch.cat(parts)
