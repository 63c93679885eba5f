"""LoRA adapters on the UNet or FLUX.1 transformer (and optionally SD's text encoders), saved so that any tool can use them.

Two files per save, both with the run's provenance in the safetensors header:
  pytorch_lora_weights.safetensors   diffusers format, via `save_lora_weights` with the adapter
                                     config as metadata (without it a reload assumes alpha == rank)
  lora_kohya.safetensors             kohya / A1111 / ComfyUI format: lora_unet_* / lora_te[12]_* keys,
                                     lora_down / lora_up / alpha; `load_lora_weights` reads it too.
UNet keys in the kohya file use diffusers' block names (lora_unet_down_blocks_...), which
ComfyUI, A1111 and diffusers map themselves; the SGM names (input_blocks_...) are not written.
FLUX.1's kohya file uses BFL's block names (lora_unet_double_blocks_* / lora_unet_single_blocks_*: `kohya_flux`).
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from facecraft_pipeline.atomic import atomic_path
from facecraft_pipeline.lora.families import family as family_spec
from facecraft_pipeline.lora.kohya_flux import to_kohya_flux

WEIGHTS_NAME = "pytorch_lora_weights.safetensors"
KOHYA_NAME = "lora_kohya.safetensors"
TARGET_MODULES = ("to_k", "to_q", "to_v", "to_out.0")
TEXT_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "out_proj")
COMPONENTS = ("unet", "transformer", "text_encoder", "text_encoder_2")


def adapter_config(rank: int, alpha: float, dropout: float, targets: tuple[str, ...] | str) -> dict[str, Any]:
    """The LoraConfig fields that define the adapter (what the file's metadata records)."""
    return {"r": rank, "lora_alpha": alpha, "lora_dropout": dropout,
            "target_modules": targets if isinstance(targets, str) else sorted(targets),  # a str: peft's regex form
            "init_lora_weights": "gaussian"}


def add_lora(model: torch.nn.Module, config: Mapping[str, Any], seed: int) -> None:
    """Add a trainable LoRA (A gaussian, B zero: starts as a no-op) to a frozen diffusers or transformers model."""
    from peft import LoraConfig

    device = next(model.parameters()).device
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        torch.manual_seed(seed)  # same seed -> same initial A, without touching the caller's RNG
        model.add_adapter(LoraConfig(**config))


def trainable_parameters(model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    """The LoRA parameters by name, in a stable order (the optimizer's state follows it)."""
    return {name: param for name, param in model.named_parameters() if param.requires_grad}


def peft_layers(named: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Parameter names (with peft's adapter name "default") -> the names `get_peft_model_state_dict` gives."""
    return {name.replace(".default", ""): tensor.detach().float().cpu().contiguous() for name, tensor in named.items()}


def save_lora(folder: Path, layers: Mapping[str, Mapping[str, torch.Tensor]], configs: Mapping[str, Mapping[str, Any]],
              family: str, metadata: Mapping[str, str]) -> dict[str, Path]:
    """Write both files into `folder` atomically; `layers[component]` are peft-named tensors (`peft_layers`);
    `family` "sd", "sdxl" or "flux" picks the pipeline whose `save_lora_weights` writes the diffusers file."""
    import diffusers
    from diffusers.utils import convert_state_dict_to_diffusers
    from safetensors.torch import load_file, save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cls = getattr(diffusers, family_spec(family).pipeline)
    kwargs: dict[str, Any] = {}
    for component, tensors in layers.items():  # a transformer's peft names are already diffusers' (lora_A / lora_B)
        kwargs[f"{component}_lora_layers"] = (dict(tensors) if component == "transformer"
                                              else convert_state_dict_to_diffusers(dict(tensors)))
        # dropout is training-only: a loader that found it would inject Dropout modules left in train mode
        kwargs[f"{component}_lora_adapter_metadata"] = {**configs[component], "lora_dropout": 0.0}
    staging = Path(tempfile.mkdtemp(prefix=".lora-", dir=folder))
    try:
        cls.save_lora_weights(staging, safe_serialization=True, **kwargs)
        header = _header(staging / WEIGHTS_NAME)  # diffusers' own: format + lora_adapter_metadata
        with atomic_path(folder / WEIGHTS_NAME) as tmp:
            save_file(load_file(staging / WEIGHTS_NAME), tmp, metadata={**header, **metadata})
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if family not in ("sd", "sdxl", "flux"):  # no kohya key layout for it (Z-Image): the diffusers file only
        return {"weights": folder / WEIGHTS_NAME}
    kohya = (to_kohya_flux(layers["transformer"], float(configs["transformer"]["lora_alpha"])) if family == "flux"
             else to_kohya(layers, configs, family == "sdxl"))
    with atomic_path(folder / KOHYA_NAME) as tmp:
        save_file(kohya, tmp, metadata=dict(metadata))
    return {"weights": folder / WEIGHTS_NAME, "kohya_weights": folder / KOHYA_NAME}


def to_kohya(layers: Mapping[str, Mapping[str, torch.Tensor]], configs: Mapping[str, Mapping[str, Any]],
             sdxl: bool) -> dict[str, torch.Tensor]:
    """kohya-ss keys (lora_unet_* / lora_te_* (SD) or lora_te1_* / lora_te2_* (SDXL)), with each module's alpha."""
    from diffusers.utils import convert_state_dict_to_kohya

    out: dict[str, torch.Tensor] = {}
    for component, tensors in layers.items():
        prefixed = {f"{component}.{k}": v for k, v in tensors.items()}
        converted = convert_state_dict_to_kohya(prefixed)
        alpha = torch.tensor(float(configs[component]["lora_alpha"]))
        for key, value in converted.items():
            if not sdxl:
                key = key.replace("lora_te1_", "lora_te_")
            key = re.sub(r"^(lora_te[12]?_)(?!text_model_)", r"\1text_model_", key)  # kohya's CLIP names keep text_model
            out[key] = alpha.clone() if key.endswith(".alpha") else value.contiguous()  # diffusers' helper writes alpha = rank
    return out


def checkpoint_weights(checkpoint_path: Path, out_dir: Path) -> dict[str, Path]:
    """The loadable LoRA files (diffusers + kohya) of one training checkpoint, for the evaluation sweep.

    Reads the checkpoint's LoRA tensors (the EMA copy when the run kept one), adapter configs and
    provenance; needs no base model.
    """
    from facecraft_pipeline.training.checkpoints import read_state

    state = read_state(Path(checkpoint_path))
    named = state.get("ema") or state["lora"]
    layers = {component: peft_layers(tensors) for component, tensors in named.items()}
    configs = {component: json.loads(text) for component, text in state["adapter"].items()}
    metadata = {k: str(v) for k, v in state.get("provenance", {}).items()}
    metadata["ss_steps"] = metadata["facecraft.steps"] = str(state["steps_done"])
    family = state.get("family") or ("sdxl" if state.get("sdxl") else "sd")
    return save_lora(Path(out_dir), layers, configs, family, metadata)


def read_metadata(path: Path) -> dict[str, str]:
    return _header(Path(path))


def _header(path: Path) -> dict[str, str]:
    from safetensors import safe_open

    with safe_open(str(path), "pt") as handle:
        return dict(handle.metadata() or {})


def add_unet_lora(unet: torch.nn.Module, rank: int, alpha: float, seed: int) -> dict[str, Any]:
    """The UNet attention LoRA the trainer adds by default (rank, alpha, no dropout); returns its config."""
    config = adapter_config(rank, alpha, 0.0, TARGET_MODULES)
    add_lora(unet, config, seed)
    return config
