"""FLUX.1 (dev, schnell and their fine-tunes): prompt encoding, latent packing, position ids, the transformer's call.

Captions are encoded once (T5 token sequence + CLIP pooled vector) and the text encoders leave the
device (freed when the trainer loaded the pipeline itself); latents are the VAE's, shifted and
scaled by its config, packed 2x2 into tokens with (0, row, column) position ids. The transformer
predicts the rectified-flow velocity (`flow_matching`), with the guidance embedding set to
`settings.guidance` when the model has one (FLUX.1-dev; schnell has none).
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image

from facecraft_pipeline.lora.flow_matching import noisy_latents, sample_sigmas, velocity
from facecraft_pipeline.lora.batches import TrainingBatches
from facecraft_pipeline.lora.families import FAMILIES
from facecraft_pipeline.lora.settings import UNET_TARGETS, LoraSettings
from facecraft_pipeline.lora.text import Conditioning

FAMILY = FAMILIES["flux"]


def pack(latents: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, H/2 * W/2, 4C): each 2x2 patch of latents is one token."""
    b, c, h, w = latents.shape
    return latents.view(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5).reshape(b, (h // 2) * (w // 2), c * 4)


def unpack(tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The inverse of `pack` for latents of `height` x `width`."""
    b, _, d = tokens.shape
    c = d // 4
    return tokens.view(b, height // 2, width // 2, c, 2, 2).permute(0, 3, 1, 4, 2, 5).reshape(b, c, height, width)


def image_ids(height: int, width: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(H/2 * W/2, 3) rotary position ids of the packed tokens: (0, row, column)."""
    rows, cols = torch.meshgrid(torch.arange(height // 2), torch.arange(width // 2), indexing="ij")
    return torch.stack([torch.zeros_like(rows), rows, cols], dim=-1).reshape(-1, 3).to(device=device, dtype=dtype)


def encode(pipe, captions: Sequence[str], max_sequence_length: int) -> Conditioning:
    """T5 hidden states (B, L, D) as `hidden`, CLIP's pooled vector (B, P) as `pooled`, as FluxPipeline encodes them."""
    device = pipe.text_encoder_2.device
    with torch.no_grad():
        hidden, pooled, _ = pipe.encode_prompt(list(captions), prompt_2=None, device=device,
                                               max_sequence_length=max_sequence_length)
    return Conditioning(hidden, pooled)


class FluxBatches(TrainingBatches):
    """The SD batches (cached latents, flips, face weights, class images) with FLUX.1's text encoding, always cached."""

    def __init__(self, pipe, examples, settings: LoraSettings, dtype, generator, class_images: Sequence[Path] = ()):
        super().__init__(pipe, examples, settings, dtype, generator, False, class_images)
        if self._cond is None:  # the text encoders are frozen and leave the device: encode every caption now
            self._cond = [self._encode_chunks(c, self.sizes) for c in self.captions[: 2 if settings.random_flip else 1]]
            if self.class_pixels is not None:
                self._class_cond = self._encode_chunks(self.class_captions, [(settings.resolution,) * 2] * len(self.class_captions))

    def _encode_text(self, captions: Sequence[str], sizes) -> Conditioning:
        return encode(self.pipe, captions, self.settings.max_sequence_length).to(self.device, self.dtype)


class FluxOps:
    """What the shared LoRA trainer asks of FLUX.1."""

    family = FAMILY
    component = "transformer"

    def __init__(self, pipe, settings: LoraSettings, device: torch.device, dtype: torch.dtype):
        self.pipe, self.settings, self.device, self.dtype = pipe, settings, device, dtype
        self.denoiser = pipe.transformer
        self.guidance_embeds = bool(self.denoiser.config.guidance_embeds)
        self.vae_scale = pipe.vae_scale_factor
        self.validation_cond: dict[str, Conditioning] = {}

    def text_models(self) -> dict[str, torch.nn.Module]:
        return {n: m for n in ("text_encoder", "text_encoder_2") if (m := getattr(self.pipe, n, None)) is not None}

    def targets(self) -> tuple[str, ...] | str:
        """Attention and MLP of every block, unless the settings name their own modules."""
        chosen = self.settings.target_modules
        return FAMILY.default_targets if tuple(chosen) == UNET_TARGETS else chosen  # type: ignore[return-value]

    def batches(self, examples, generator: torch.Generator, class_paths: Sequence[Path]) -> FluxBatches:
        return FluxBatches(self.pipe, examples, self.settings, self.dtype, generator, class_paths)

    def release_text_encoders(self, free: bool) -> None:
        """Encode the validation prompts, then move the text encoders off the device (`free`: drop them)."""
        if self.settings.validation_prompts and "text_encoder_2" in self.text_models():
            for prompt in self.settings.prompts():
                self.validation_cond[prompt] = encode(self.pipe, [prompt], self.settings.max_sequence_length)
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

    def predict(self, noisy: torch.Tensor, sigmas: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        b, _, h, w = noisy.shape
        text_ids = torch.zeros(cond.hidden.shape[1], 3, device=noisy.device, dtype=noisy.dtype)
        guidance = (torch.full((b,), self.settings.guidance, device=noisy.device, dtype=torch.float32)
                    if self.guidance_embeds else None)
        out = self.denoiser(hidden_states=pack(noisy), timestep=sigmas.to(noisy.dtype), guidance=guidance,
                            pooled_projections=cond.pooled, encoder_hidden_states=cond.hidden, txt_ids=text_ids,
                            img_ids=image_ids(h, w, noisy.device, noisy.dtype), return_dict=False)[0]
        return unpack(out, h, w)

    def snr_weights(self, timesteps: torch.Tensor) -> torch.Tensor:
        raise ValueError("snr_gamma applies to DDPM families only")  # refused up front by families.check_settings

    def generate(self, prompt: str, seed: int, steps: int, resolution: int) -> list[Image.Image]:
        """One image from the CPU noise of `seed`, with the family's guidance; cached prompt embeddings when the
        text encoders are gone."""
        cond = self.validation_cond.get(prompt)
        inputs = ({"prompt": [prompt]} if cond is None else
                  {"prompt_embeds": cond.hidden.to(self.device, self.dtype),
                   "pooled_prompt_embeds": cond.pooled.to(self.device, self.dtype)})
        return self.pipe(**inputs, num_inference_steps=steps, guidance_scale=FAMILY.sample_guidance, height=resolution,
                         width=resolution, max_sequence_length=self.settings.max_sequence_length,
                         generator=[torch.Generator().manual_seed(seed)]).images
