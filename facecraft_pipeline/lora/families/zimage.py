"""Z-Image (Tongyi-MAI, Apache 2.0): a single-stream DiT on FLUX.1's 16-channel VAE latents, conditioned by Qwen3.

Captions go through the pipeline's chat template and Qwen3 once (second-to-last hidden states,
variable length: kept padded with their token mask) and the text encoder leaves the device. The
transformer takes each image as (C, 1, H, W) with its own caption tokens, the timestep as 1 - sigma,
and predicts x0 - noise: the negative of the rectified-flow velocity `flow_matching` trains on.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image

from facecraft_pipeline.lora.batches import TrainingBatches
from facecraft_pipeline.lora.families import FAMILIES
from facecraft_pipeline.lora.flow_matching import noisy_latents, sample_sigmas, velocity
from facecraft_pipeline.lora.settings import UNET_TARGETS, LoraSettings
from facecraft_pipeline.lora.text import Conditioning

FAMILY = FAMILIES["zimage"]


def encode(pipe, captions: Sequence[str], max_sequence_length: int) -> Conditioning:
    """Qwen3 hidden states of each caption, padded to `max_sequence_length`, with the mask of its real tokens."""
    device = pipe.text_encoder.device
    with torch.no_grad():
        embeds, _ = pipe.encode_prompt(list(captions), device=device, do_classifier_free_guidance=False,
                                       max_sequence_length=max_sequence_length)
    hidden = embeds[0].new_zeros(len(embeds), max_sequence_length, embeds[0].shape[-1])
    mask = torch.zeros(len(embeds), max_sequence_length, dtype=torch.bool, device=hidden.device)
    for row, tokens in enumerate(embeds):
        hidden[row, :len(tokens)], mask[row, :len(tokens)] = tokens, True
    return Conditioning(hidden, mask=mask)


class ZImageBatches(TrainingBatches):
    """The shared batches with Z-Image's caption encoding, always cached (the text encoder is frozen)."""

    def __init__(self, pipe, examples, settings: LoraSettings, dtype, generator, class_images: Sequence[Path] = ()):
        super().__init__(pipe, examples, settings, dtype, generator, False, class_images)
        if self._cond is None:
            self._cond = [self._encode_chunks(c, self.sizes) for c in self.captions[: 2 if settings.random_flip else 1]]
            if self.class_pixels is not None:
                self._class_cond = self._encode_chunks(self.class_captions, [(settings.resolution,) * 2] * len(self.class_captions))

    def _encode_text(self, captions: Sequence[str], sizes) -> Conditioning:
        return encode(self.pipe, captions, self.settings.max_sequence_length).to(self.device, self.dtype)


class ZImageOps:
    """What the shared LoRA trainer asks of Z-Image."""

    family = FAMILY
    component = "transformer"

    def __init__(self, pipe, settings: LoraSettings, device: torch.device, dtype: torch.dtype):
        self.pipe, self.settings, self.device, self.dtype = pipe, settings, device, dtype
        self.denoiser = pipe.transformer
        self.validation_cond: dict[str, Conditioning] = {}

    def text_models(self) -> dict[str, torch.nn.Module]:
        return {"text_encoder": self.pipe.text_encoder} if getattr(self.pipe, "text_encoder", None) is not None else {}

    def targets(self) -> tuple[str, ...] | str:
        chosen = self.settings.target_modules
        return FAMILY.default_targets if tuple(chosen) == UNET_TARGETS else chosen  # type: ignore[return-value]

    def batches(self, examples, generator: torch.Generator, class_paths: Sequence[Path]) -> ZImageBatches:
        return ZImageBatches(self.pipe, examples, self.settings, self.dtype, generator, class_paths)

    def release_text_encoders(self, free: bool) -> None:
        """Encode the validation prompts, then move Qwen3 off the device (`free`: drop it)."""
        if self.settings.validation_prompts and self.text_models():
            for prompt in self.settings.prompts():
                self.validation_cond[prompt] = encode(self.pipe, [prompt], self.settings.max_sequence_length)
        for model in self.text_models().values():
            model.to("cpu")
        if free and self.text_models():
            self.pipe.text_encoder = None
            gc.collect()
            if self.device.type == "cuda":
                torch.cuda.empty_cache()

    def timesteps(self, count: int, generator: torch.Generator) -> torch.Tensor:
        s = self.settings
        return sample_sigmas(count, generator, self.device, s.timestep_sampling, s.logit_mean, s.logit_std, s.timestep_shift)

    def noisy_and_target(self, latents: torch.Tensor, noise: torch.Tensor, sigmas: torch.Tensor):
        return noisy_latents(latents, noise, sigmas), velocity(latents, noise)

    def predict(self, noisy: torch.Tensor, sigmas: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        images = [row.unsqueeze(1) for row in noisy]  # (C, 1, H, W): one frame
        captions = [cond.hidden[i][cond.mask[i]] for i in range(len(images))]
        out = self.denoiser(images, (1 - sigmas).to(noisy.dtype), captions, return_dict=False)[0]
        return -torch.stack(out).squeeze(2)  # the model predicts x0 - noise

    def snr_weights(self, timesteps: torch.Tensor) -> torch.Tensor:
        raise ValueError("snr_gamma applies to DDPM families only")  # refused up front by families.check_settings

    def generate(self, prompt: str, seed: int, steps: int, resolution: int) -> list[Image.Image]:
        cond = self.validation_cond.get(prompt)
        inputs = ({"prompt": [prompt]} if cond is None else
                  {"prompt_embeds": [cond.hidden[0][cond.mask[0]].to(self.device, self.dtype)]})
        return self.pipe(**inputs, num_inference_steps=steps, guidance_scale=FAMILY.sample_guidance, height=resolution,
                         width=resolution, max_sequence_length=self.settings.max_sequence_length,
                         generator=[torch.Generator().manual_seed(seed)]).images
