"""The LoRA adapter on the UNet, added and saved the way diffusers' own training scripts do it."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from peft import LoraConfig

WEIGHTS_NAME = "pytorch_lora_weights.safetensors"
TARGET_MODULES = ("to_k", "to_q", "to_v", "to_out.0")


def add_unet_lora(unet: torch.nn.Module, rank: int, alpha: float, seed: int) -> LoraConfig:
    """Add a trainable LoRA adapter (A gaussian, B zero: starts as a no-op) to the frozen UNet's attention."""
    from peft import LoraConfig

    config = LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights="gaussian", target_modules=list(TARGET_MODULES))
    device = next(unet.parameters()).device
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        torch.manual_seed(seed)  # same seed -> same initial A, without touching the caller's RNG
        unet.add_adapter(config)
    return config


def trainable_parameters(unet: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    """The LoRA parameters by name, in a stable order (the optimizer's state follows it)."""
    return {name: param for name, param in unet.named_parameters() if param.requires_grad}


def save_unet_lora(unet: torch.nn.Module, config: LoraConfig, folder: Path) -> Path:
    """Write folder/pytorch_lora_weights.safetensors with the adapter config as metadata, atomically.

    The metadata is what makes `load_lora_weights` use the trained alpha: without it a
    reload assumes alpha == rank and scales the update wrongly.
    """
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    staging = Path(tempfile.mkdtemp(prefix=".lora-", dir=folder))
    try:
        StableDiffusionPipeline.save_lora_weights(
            staging,
            unet_lora_layers=layers,
            safe_serialization=True,
            unet_lora_adapter_metadata=config.to_dict(),
        )
        os.replace(staging / WEIGHTS_NAME, folder / WEIGHTS_NAME)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder / WEIGHTS_NAME
