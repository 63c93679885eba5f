"""Stable Diffusion 1.x/2.x and SDXL: DDPM noise (epsilon or v target), the UNet's call, Min-SNR weights."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image

from facecraft_pipeline.lora.batches import TrainingBatches
from facecraft_pipeline.lora.families import FAMILIES
from facecraft_pipeline.lora.sample import generate
from facecraft_pipeline.lora.settings import LoraSettings
from facecraft_pipeline.lora.text import Conditioning


class SdOps:
    """What the shared LoRA trainer asks of an SD or SDXL pipeline."""

    component = "unet"

    def __init__(self, pipe, settings: LoraSettings, device: torch.device, dtype: torch.dtype):
        from diffusers import DDPMScheduler

        self.pipe, self.settings, self.device, self.dtype = pipe, settings, device, dtype
        self.sdxl = getattr(pipe, "text_encoder_2", None) is not None
        self.family = FAMILIES["sdxl" if self.sdxl else "sd"]
        self.denoiser = pipe.unet
        self.noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
        self.v_prediction = self.noise_scheduler.config.prediction_type == "v_prediction"

    def text_models(self) -> dict[str, torch.nn.Module]:
        return {"text_encoder": self.pipe.text_encoder} | ({"text_encoder_2": self.pipe.text_encoder_2} if self.sdxl else {})

    def targets(self) -> tuple[str, ...]:
        return self.settings.target_modules

    def batches(self, examples, generator: torch.Generator, class_paths: Sequence[Path]) -> TrainingBatches:
        return TrainingBatches(self.pipe, examples, self.settings, self.dtype, generator, self.settings.train_text_encoder,
                               class_paths)

    def release_text_encoders(self, free: bool) -> None:
        """SD keeps its (small) text encoders; `low_memory` moves them off the GPU in the trainer."""

    def timesteps(self, count: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randint(0, self.noise_scheduler.config.num_train_timesteps, (count,), generator=generator,
                             device=self.device)

    def noisy_and_target(self, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor):
        noisy = self.noise_scheduler.add_noise(latents, noise, timesteps)
        target = self.noise_scheduler.get_velocity(latents, noise, timesteps) if self.v_prediction else noise
        return noisy, target

    def predict(self, noisy: torch.Tensor, timesteps: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        return self.denoiser(noisy, timesteps, cond.hidden, **cond.unet_kwargs(), return_dict=False)[0]

    def snr_weights(self, timesteps: torch.Tensor) -> torch.Tensor:
        """Min-SNR-gamma weights of the per-item losses."""
        from diffusers.training_utils import compute_snr

        snr = compute_snr(self.noise_scheduler, timesteps)
        weights = torch.clamp(snr, max=self.settings.snr_gamma)
        return weights / (snr + 1) if self.v_prediction else weights / snr

    def generate(self, prompt: str, seed: int, steps: int, resolution: int) -> list[Image.Image]:
        return generate(self.pipe, prompt, n=1, seed=seed, steps=steps, resolution=resolution)
