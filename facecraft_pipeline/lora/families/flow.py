"""What the flow-matching families (FLUX.1, Z-Image) share: rectified-flow noise and target, frozen text encoders
whose captions are encoded once and which then leave the device, and the settings' own target modules."""

from __future__ import annotations

import gc
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from facecraft_pipeline.lora.batches import TrainingBatches
from facecraft_pipeline.lora.families import Family
from facecraft_pipeline.lora.flow_matching import noisy_latents, sample_sigmas, velocity
from facecraft_pipeline.lora.settings import UNET_TARGETS, LoraSettings
from facecraft_pipeline.lora.text import Conditioning

Encode = Callable[[object, Sequence[str], int], Conditioning]  # (pipe, captions, max_sequence_length)


class CachedTextBatches(TrainingBatches):
    """The shared batches (cached latents, flips, face weights, class images) with the family's caption encoding,
    always cached: the text encoders are frozen and leave the device after this."""

    def __init__(self, pipe, examples, settings: LoraSettings, dtype, generator, class_images: Sequence[Path], encode: Encode):
        self.encode = encode  # before super().__init__, which encodes through _encode_text
        super().__init__(pipe, examples, settings, dtype, generator, False, class_images)
        if self._cond is None:
            self._cond = [self._encode_chunks(c, self.sizes) for c in self.captions[: 2 if settings.random_flip else 1]]
            if self.class_pixels is not None:
                self._class_cond = self._encode_chunks(self.class_captions, [(settings.resolution,) * 2] * len(self.class_captions))

    def _encode_text(self, captions: Sequence[str], sizes) -> Conditioning:
        return self.encode(self.pipe, captions, self.settings.max_sequence_length).to(self.device, self.dtype)


class FlowMatchingOps(ABC):
    """The family-independent half of a flow-matching family; subclasses say how to encode, predict and sample."""

    family: Family
    component = "transformer"
    text_encoders: tuple[str, ...] = ()

    def __init__(self, pipe, settings: LoraSettings, device: torch.device, dtype: torch.dtype):
        self.pipe, self.settings, self.device, self.dtype = pipe, settings, device, dtype
        self.denoiser = pipe.transformer
        self.validation_cond: dict[str, Conditioning] = {}

    @staticmethod
    @abstractmethod
    def encode(pipe, captions: Sequence[str], max_sequence_length: int) -> Conditioning:
        """The family's text conditioning of `captions` (each family module gives its own)."""

    def text_models(self) -> dict[str, torch.nn.Module]:
        return {n: m for n in self.text_encoders if (m := getattr(self.pipe, n, None)) is not None}

    def targets(self) -> tuple[str, ...] | str:
        """Attention and MLP of every block, unless the settings name their own modules."""
        chosen = self.settings.target_modules
        return self.family.default_targets if tuple(chosen) == UNET_TARGETS else chosen  # type: ignore[return-value]

    def batches(self, examples, generator: torch.Generator, class_paths: Sequence[Path]) -> CachedTextBatches:
        return CachedTextBatches(self.pipe, examples, self.settings, self.dtype, generator, class_paths, self.encode)

    def release_text_encoders(self, free: bool) -> None:
        """Encode the validation prompts, then move the text encoders off the device (`free`: drop them)."""
        if self.settings.validation_prompts and self.text_models():
            for prompt in self.settings.prompts():
                self.validation_cond[prompt] = self.encode(self.pipe, [prompt], self.settings.max_sequence_length)
        for name, model in self.text_models().items():
            model.to("cpu")
            if free:
                setattr(self.pipe, name, None)
        if free:
            gc.collect()
            if self.device.type == "cuda":
                torch.cuda.empty_cache()

    def timesteps(self, count: int, generator: torch.Generator) -> torch.Tensor:
        s = self.settings
        return sample_sigmas(count, generator, self.device, s.timestep_sampling, s.logit_mean, s.logit_std, s.timestep_shift)

    def noisy_and_target(self, latents: torch.Tensor, noise: torch.Tensor, sigmas: torch.Tensor):
        return noisy_latents(latents, noise, sigmas), velocity(latents, noise)

    def snr_weights(self, timesteps: torch.Tensor) -> torch.Tensor:
        raise ValueError("snr_gamma applies to DDPM families only")  # refused up front by families.check_settings

    def sample(self, inputs: dict, seed: int, steps: int, resolution: int):
        """One image from the CPU noise of `seed` with the family's guidance; `inputs`: prompt or its embeddings."""
        return self.pipe(**inputs, num_inference_steps=steps, guidance_scale=self.family.sample_guidance, height=resolution,
                         width=resolution, max_sequence_length=self.settings.max_sequence_length,
                         generator=[torch.Generator().manual_seed(seed)]).images
