"""Fitting a LoRA run on the card people have: quantized frozen base weights and the `vram_gb` presets.

A preset only turns memory savers on (never off) over what the settings say:

    family  | 24 GiB                          | 16 GiB                              | 12 GiB
    flux    | float8 base, checkpointing      | nf4 base, checkpointing, 8-bit AdamW | nf4, checkpointing, 8-bit AdamW, batch 1
    zimage  | checkpointing                   | float8, checkpointing, 8-bit AdamW   | nf4, checkpointing, 8-bit AdamW, batch 1
    sd/sdxl | (as set)                        | checkpointing                        | checkpointing, 8-bit AdamW, batch 1

FLUX.1's 12 B transformer is 23.8 GB in bf16, so a 24 GiB card needs it in float8 (ai-toolkit's
default there) and 16/12 GiB cards in NF4 (QLoRA); Z-Image's 6 B transformer is 12 GB in bf16. Quantization needs CUDA: nf4 through
bitsandbytes, float8 through torchao (weights stored in float8, computed in bf16). Refusals are one
sentence naming the setting, raised before any weights load.
"""

from __future__ import annotations

import dataclasses
import importlib.util

import torch

QUANTIZATIONS = ("none", "nf4", "float8")
VRAM_PRESETS = (12, 16, 24)
_PRESETS = {
    ("flux", 24): {"quantize_base": "float8", "gradient_checkpointing": True},
    ("flux", 16): {"quantize_base": "nf4", "gradient_checkpointing": True, "optimizer": "adamw8bit"},
    ("flux", 12): {"quantize_base": "nf4", "gradient_checkpointing": True, "optimizer": "adamw8bit", "batch_size": 1},
    ("zimage", 24): {"gradient_checkpointing": True},
    ("zimage", 16): {"quantize_base": "float8", "gradient_checkpointing": True, "optimizer": "adamw8bit"},
    ("zimage", 12): {"quantize_base": "nf4", "gradient_checkpointing": True, "optimizer": "adamw8bit", "batch_size": 1},
    ("sd", 16): {"gradient_checkpointing": True}, ("sdxl", 16): {"gradient_checkpointing": True},
    ("sd", 12): {"gradient_checkpointing": True, "optimizer": "adamw8bit", "batch_size": 1},
    ("sdxl", 12): {"gradient_checkpointing": True, "optimizer": "adamw8bit", "batch_size": 1},
}
_PACKAGE = {"nf4": "bitsandbytes", "float8": "torchao"}


def apply_vram_preset(settings, family: str):
    """The settings with the preset of `settings.vram_gb` for `family` applied (unchanged without one)."""
    if settings.vram_gb is None:
        return settings
    changes = dict(_PRESETS.get((family, settings.vram_gb), {}))
    if changes.get("batch_size") and settings.batch_size < changes["batch_size"]:
        changes.pop("batch_size")
    return dataclasses.replace(settings, **changes)


def check_quantization(quantize: str, device: torch.device | str) -> None:
    """Refuse a quantized base where it cannot run: without CUDA, without its package, float8 without fp8 support."""
    if quantize == "none":
        return
    if torch.device(device).type != "cuda" or not torch.cuda.is_available():
        raise ValueError(f"LoraSettings.quantize_base={quantize} needs a CUDA GPU and this run is on {torch.device(device).type}: "
                         "set quantize_base to none (or vram_gb to empty)")
    if importlib.util.find_spec(_PACKAGE[quantize]) is None:
        raise ValueError(f"LoraSettings.quantize_base={quantize} needs {_PACKAGE[quantize]}, which is not installed: "
                         f"pip install -c constraints.txt {_PACKAGE[quantize]}, or set quantize_base to none")
    if quantize == "float8" and torch.cuda.get_device_capability(torch.device(device)) < (8, 9):
        raise ValueError("LoraSettings.quantize_base=float8 needs a GPU with float8 support (Ada/Hopper, compute 8.9+): "
                         "use nf4 or none")


def quantization_config(quantize: str, compute_dtype: torch.dtype):
    """The diffusers quantization config of the frozen denoiser (None: full precision)."""
    if quantize == "nf4":
        from diffusers import BitsAndBytesConfig

        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute_dtype)
    if quantize == "float8":
        from diffusers import TorchAoConfig

        return TorchAoConfig("float8wo_e4m3")
    return None
