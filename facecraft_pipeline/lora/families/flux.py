"""FLUX.1 (dev, schnell and their fine-tunes): prompt encoding, latent packing, position ids, the transformer's call.

Captions are encoded once (T5 token sequence + CLIP pooled vector) and the text encoders leave the
device (freed when the trainer loaded the pipeline itself); latents are the VAE's, shifted and
scaled by its config, packed 2x2 into tokens with (0, row, column) position ids. The transformer
predicts the rectified-flow velocity (`flow_matching`), with the guidance embedding set to
`settings.guidance` when the model has one (FLUX.1-dev; schnell has none).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image

from facecraft_pipeline.lora.families import FAMILIES
from facecraft_pipeline.lora.families.flow import FlowMatchingOps
from facecraft_pipeline.lora.settings import LoraSettings
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


class FluxOps(FlowMatchingOps):
    """What the shared LoRA trainer asks of FLUX.1."""

    family = FAMILY
    text_encoders = ("text_encoder", "text_encoder_2")

    def __init__(self, pipe, settings: LoraSettings, device: torch.device, dtype: torch.dtype):
        super().__init__(pipe, settings, device, dtype)
        self.guidance_embeds = bool(self.denoiser.config.guidance_embeds)

    encode = staticmethod(encode)

    def predict(self, noisy: torch.Tensor, sigmas: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        b, _, h, w = noisy.shape
        text_ids = torch.zeros(cond.hidden.shape[1], 3, device=noisy.device, dtype=noisy.dtype)
        guidance = (torch.full((b,), self.settings.guidance, device=noisy.device, dtype=torch.float32)
                    if self.guidance_embeds else None)
        out = self.denoiser(hidden_states=pack(noisy), timestep=sigmas.to(noisy.dtype), guidance=guidance,
                            pooled_projections=cond.pooled, encoder_hidden_states=cond.hidden, txt_ids=text_ids,
                            img_ids=image_ids(h, w, noisy.device, noisy.dtype), return_dict=False)[0]
        return unpack(out, h, w)

    def generate(self, prompt: str, seed: int, steps: int, resolution: int) -> list[Image.Image]:
        """Cached prompt embeddings when the text encoders are gone."""
        cond = self.validation_cond.get(prompt)
        inputs = ({"prompt": [prompt]} if cond is None else
                  {"prompt_embeds": cond.hidden.to(self.device, self.dtype),
                   "pooled_prompt_embeds": cond.pooled.to(self.device, self.dtype)})
        return self.sample(inputs, seed, steps, resolution)
