"""Z-Image (Tongyi-MAI, Apache 2.0): a single-stream DiT on FLUX.1's 16-channel VAE latents, conditioned by Qwen3.

Captions go through the pipeline's chat template and Qwen3 once (second-to-last hidden states,
variable length: kept padded with their token mask) and the text encoder leaves the device. The
transformer takes each image as (C, 1, H, W) with its own caption tokens, the timestep as 1 - sigma,
and predicts x0 - noise: the negative of the rectified-flow velocity `flow_matching` trains on.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image

from facecraft_pipeline.lora.families import FAMILIES
from facecraft_pipeline.lora.families.flow import FlowMatchingOps
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


class ZImageOps(FlowMatchingOps):
    """What the shared LoRA trainer asks of Z-Image."""

    family = FAMILY
    text_encoders = ("text_encoder",)
    encode = staticmethod(encode)

    def predict(self, noisy: torch.Tensor, sigmas: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        images = [row.unsqueeze(1) for row in noisy]  # (C, 1, H, W): one frame
        captions = [cond.hidden[i][cond.mask[i]] for i in range(len(images))]
        out = self.denoiser(images, (1 - sigmas).to(noisy.dtype), captions, return_dict=False)[0]
        return -torch.stack(out).squeeze(2)  # the model predicts x0 - noise

    def generate(self, prompt: str, seed: int, steps: int, resolution: int) -> list[Image.Image]:
        cond = self.validation_cond.get(prompt)
        inputs = ({"prompt": [prompt]} if cond is None else
                  {"prompt_embeds": [cond.hidden[0][cond.mask[0]].to(self.device, self.dtype)]})
        return self.sample(inputs, seed, steps, resolution)
