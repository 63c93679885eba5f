"""Captions -> the UNet's text conditioning, for SD 1.x/2.x and SDXL, the way their pipelines encode them.

SD: the text encoder's last hidden state. SDXL: the penultimate hidden states of both encoders,
concatenated, plus the second encoder's pooled projection and the six size/crop numbers
("micro-conditioning": original size, crop top-left, target size).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass
class Conditioning:
    """What the UNet takes besides the noisy latents; rows line up with the batch."""

    hidden: torch.Tensor  # (B, 77, D)
    pooled: torch.Tensor | None = None  # SDXL (B, P)
    time_ids: torch.Tensor | None = None  # SDXL (B, 6)
    mask: torch.Tensor | None = None  # (B, L) bool: the real tokens of variable-length captions (Z-Image), padded rows

    def unet_kwargs(self) -> dict:
        if self.pooled is None:
            return {}
        return {"added_cond_kwargs": {"text_embeds": self.pooled, "time_ids": self.time_ids}}

    def index(self, rows: torch.Tensor) -> Conditioning:
        return Conditioning(*(None if t is None else t[rows] for t in (self.hidden, self.pooled, self.time_ids, self.mask)))

    def to(self, device: torch.device, dtype: torch.dtype) -> Conditioning:
        return Conditioning(*(None if t is None else t.to(device, dtype) for t in (self.hidden, self.pooled, self.time_ids)),
                            None if self.mask is None else self.mask.to(device))

    @staticmethod
    def where(mask: torch.Tensor, yes: Conditioning, no: Conditioning) -> Conditioning:
        """Row-wise choice (on the device): `yes` where mask, else `no`."""
        def pick(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor | None:
            return None if a is None else torch.where(mask.view(-1, *([1] * (a.dim() - 1))), a, b)

        return Conditioning(pick(yes.hidden, no.hidden), pick(yes.pooled, no.pooled), pick(yes.time_ids, no.time_ids),  # type: ignore[arg-type]
                            pick(yes.mask, no.mask))

    @staticmethod
    def cat(parts: Sequence[Conditioning]) -> Conditioning:
        def join(name: str) -> torch.Tensor | None:
            values = [getattr(p, name) for p in parts]
            return None if values[0] is None else torch.cat(values)

        return Conditioning(join("hidden"), join("pooled"), join("time_ids"), join("mask"))  # type: ignore[arg-type]


def encoders(pipe) -> list[tuple]:
    """(tokenizer, text encoder) pairs of the pipeline: one for SD, two for SDXL."""
    pairs = [(pipe.tokenizer, pipe.text_encoder)]
    if getattr(pipe, "text_encoder_2", None) is not None:
        pairs.append((pipe.tokenizer_2, pipe.text_encoder_2))
    return pairs


def encode(pipe, captions: Sequence[str], sizes: Sequence[tuple[int, int]] | None = None, resolution: int = 512) -> Conditioning:
    """Encode `captions` (with gradients if an encoder has trainable LoRA params)."""
    pairs = encoders(pipe)
    device = pipe.unet.device
    if len(pairs) == 1:
        tokenizer, encoder = pairs[0]
        ids = _ids(tokenizer, captions).to(encoder.device)
        return Conditioning(encoder(ids, return_dict=False)[0].to(device))
    hidden, pooled = [], None
    for tokenizer, encoder in pairs:
        out = encoder(_ids(tokenizer, captions).to(encoder.device), output_hidden_states=True)
        hidden.append(out.hidden_states[-2].to(device))
        pooled = out[0].to(device)  # the last encoder's pooled projection (text_embeds)
    sizes = sizes or [(resolution, resolution)] * len(captions)
    time_ids = torch.tensor([[h, w, 0, 0, resolution, resolution] for h, w in sizes], dtype=torch.float32, device=device)
    return Conditioning(torch.cat(hidden, dim=-1), pooled, time_ids)


def _ids(tokenizer, captions: Sequence[str]) -> torch.Tensor:
    return tokenizer(list(captions), padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                     return_tensors="pt").input_ids
