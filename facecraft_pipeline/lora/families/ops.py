"""The family code of a loaded pipeline: `ops_for(pipe, ...)` -> SdOps, FluxOps or ZImageOps."""

from __future__ import annotations

import torch

from facecraft_pipeline.lora.families.flux import FluxOps
from facecraft_pipeline.lora.families.sd import SdOps
from facecraft_pipeline.lora.families.zimage import ZImageOps
from facecraft_pipeline.lora.settings import LoraSettings


def ops_for(pipe, settings: LoraSettings, device: torch.device, dtype: torch.dtype) -> SdOps | FluxOps | ZImageOps:
    name = type(pipe).__name__
    if getattr(pipe, "transformer", None) is not None and name.startswith("Flux"):
        return FluxOps(pipe, settings, device, dtype)
    if getattr(pipe, "transformer", None) is not None and name.startswith("ZImage"):
        return ZImageOps(pipe, settings, device, dtype)
    return SdOps(pipe, settings, device, dtype)
