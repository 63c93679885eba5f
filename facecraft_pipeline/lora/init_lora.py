"""Warm start: a new run begins from the LoRA in a file this trainer wrote (diffusers format, or kohya for FLUX.1).

The file's family (its header's facecraft.family, else its key layout) must be the base model's:
a FLUX.1 LoRA cannot start an SD run or the other way round, and the rank must match.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from facecraft_pipeline.lora.kohya_flux import from_kohya_flux


def lora_family(tensors: Mapping[str, torch.Tensor], header: Mapping[str, str]) -> str:
    """"flux", "zimage", "sdxl" or "sd", from the header when this trainer wrote it, else from the tensor names."""
    if header.get("facecraft.family"):
        return header["facecraft.family"]
    if any(k.startswith(("transformer.layers.", "transformer.context_refiner.")) for k in tensors):
        return "zimage"
    if any(k.startswith(("transformer.", "lora_unet_double_blocks_", "lora_unet_single_blocks_")) for k in tensors):
        return "flux"
    return "sdxl" if any(k.startswith(("text_encoder_2.", "lora_te2_")) or "add_embedding" in k for k in tensors) else "sd"


def init_tensors(path: Path, family: str, rank: int) -> dict[str, dict[str, torch.Tensor]]:
    """component -> peft-named LoRA tensors (`<module>.lora_A.weight`, without the adapter name) of the file."""
    from diffusers.utils import convert_unet_state_dict_to_peft
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"LoraSettings.init_lora {str(path)!r} does not exist")
    tensors = load_file(path)
    with safe_open(str(path), "pt") as handle:
        header = dict(handle.metadata() or {})
    found = lora_family(tensors, header)
    if found != family:
        raise ValueError(f"LoraSettings.init_lora {path.name!r} is a {found} LoRA, but the base model is {family}: "
                         f"start from a {family} LoRA or leave init_lora empty")
    if any(k.endswith(".lora_down.weight") for k in tensors):
        if family != "flux":
            raise ValueError(f"LoraSettings.init_lora {path.name!r} is in kohya format; for {family} give the diffusers "
                             "file (pytorch_lora_weights.safetensors) beside it")
        out = {"transformer": from_kohya_flux(tensors)[0]}
    else:
        out = {}
        for key, value in tensors.items():
            component, name = key.split(".", 1)
            out.setdefault(component, {})[name] = value
        out = {c: (t if c == "transformer" else convert_unet_state_dict_to_peft(t)) for c, t in out.items()}
    ranks = {v.shape[0] for t in out.values() for k, v in t.items() if k.endswith("lora_A.weight")}
    if ranks != {rank}:
        raise ValueError(f"LoraSettings.init_lora {path.name!r} has rank {sorted(ranks)}, LoraSettings.rank is {rank}: "
                         "set rank to the file's")
    return out


@torch.no_grad()
def load_init(params: Mapping[str, Mapping[str, torch.nn.Parameter]], tensors: Mapping[str, Mapping[str, torch.Tensor]]) -> None:
    """Copy the file's tensors into the trainer's LoRA parameters (names with peft's ".default"); every one must match."""
    for component, named in params.items():
        source = tensors.get(component, {})
        for name, param in named.items():
            key = name.replace(".default", "")
            if key not in source:
                raise ValueError(f"LoraSettings.init_lora has no {component} tensor {key} (other target_modules?)")
            param.copy_(source[key].to(param.device, param.dtype))
