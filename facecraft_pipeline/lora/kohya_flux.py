"""FLUX.1 LoRA in the kohya sd-scripts / ComfyUI key layout, and back.

kohya names FLUX.1's modules as BFL's checkpoint does: `lora_unet_double_blocks_<i>_img_attn_qkv`
(q, k and v in one Linear), `..._img_attn_proj`, `..._img_mlp_0/2`, `..._img_mod_lin`, the same with
`txt_`, and `lora_unet_single_blocks_<i>_linear1` (q, k, v and the MLP in), `_linear2`,
`_modulation_lin`. diffusers keeps q, k, v (and the single blocks' MLP) apart, each with its own
rank-r LoRA; one fused module holds them exactly as kohya's split_qkv does: the downs stacked
(n*r rows), the ups block-diagonal, and alpha n*alpha so that every reader's alpha / rows(down)
scale stays alpha / r. A part that was not trained is written as zeros (and left out on the way back).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

MLP_RATIO = 4  # FLUX.1's single blocks: MLP width = 4 x hidden
_DOUBLE = {"attn.to_out.0": "img_attn_proj", "ff.net.0.proj": "img_mlp_0", "ff.net.2": "img_mlp_2", "norm1.linear": "img_mod_lin",
           "attn.to_add_out": "txt_attn_proj", "ff_context.net.0.proj": "txt_mlp_0", "ff_context.net.2": "txt_mlp_2",
           "norm1_context.linear": "txt_mod_lin"}
_DOUBLE_FUSED = {"img_attn_qkv": ("attn.to_q", "attn.to_k", "attn.to_v"),
                 "txt_attn_qkv": ("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj")}
_SINGLE = {"proj_out": "linear2", "norm.linear": "modulation_lin"}
_SINGLE_FUSED = {"linear1": ("attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp")}
_BLOCKS = {"transformer_blocks": ("double_blocks", _DOUBLE, _DOUBLE_FUSED),
           "single_transformer_blocks": ("single_blocks", _SINGLE, _SINGLE_FUSED)}
_MODULE = re.compile(r"^(transformer_blocks|single_transformer_blocks)\.(\d+)\.(.+)\.lora_([AB])\.weight$")


def to_kohya_flux(layers: Mapping[str, torch.Tensor], alpha: float) -> dict[str, torch.Tensor]:
    """peft-named transformer LoRA tensors (`<module>.lora_A/B.weight`) -> kohya keys with `.alpha`."""
    modules: dict[tuple[str, int], dict[str, dict[str, torch.Tensor]]] = {}
    for key, tensor in layers.items():
        match = _MODULE.match(key)
        if match is None:
            raise ValueError(f"{key}: not a LoRA on a FLUX.1 double- or single-stream block (kohya has no name for it)")
        blocks, index, module, part = match.groups()
        modules.setdefault((blocks, int(index)), {}).setdefault(module, {})[part] = tensor
    out: dict[str, torch.Tensor] = {}
    for (blocks, index), found in sorted(modules.items()):
        kohya_blocks, plain, fused = _BLOCKS[blocks]
        prefix = f"lora_unet_{kohya_blocks}_{index}_"
        for module, name in plain.items():
            if module in found:
                _write(out, prefix + name, found[module]["A"], found[module]["B"], alpha)
        for name, parts in fused.items():
            present = [found[p] for p in parts if p in found]
            if not present:
                continue
            rank, hidden = present[0]["A"].shape
            dims = [hidden] * 3 + ([MLP_RATIO * hidden] if len(parts) == 4 else [])
            downs = [found[p]["A"] if p in found else present[0]["A"].new_zeros(rank, hidden) for p in parts]
            ups = [found[p]["B"] if p in found else present[0]["B"].new_zeros(dim, rank) for p, dim in zip(parts, dims, strict=True)]
            _write(out, prefix + name, torch.cat(downs), torch.block_diag(*ups), alpha * len(parts))
    return out


def from_kohya_flux(kohya: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """The inverse of `to_kohya_flux`: (peft-named tensors, alpha per module) of the trained parts."""
    layers: dict[str, torch.Tensor] = {}
    alphas: dict[str, float] = {}
    inverse = {}
    for blocks, (kohya_blocks, plain, fused) in _BLOCKS.items():
        inverse |= {(kohya_blocks, name): (blocks, (module,)) for module, name in plain.items()}
        inverse |= {(kohya_blocks, name): (blocks, parts) for name, parts in fused.items()}
    for key in kohya:
        if not key.endswith(".lora_down.weight"):
            continue
        stem = key.removesuffix(".lora_down.weight")
        match = re.match(r"^lora_unet_(double_blocks|single_blocks)_(\d+)_(.+)$", stem)
        if match is None or (match.group(1), match.group(3)) not in inverse:
            raise ValueError(f"{key}: not a kohya FLUX.1 block module")
        blocks, parts = inverse[(match.group(1), match.group(3))]
        down, up = kohya[key], kohya[f"{stem}.lora_up.weight"]
        rank = down.shape[0] // len(parts)
        alpha = float(kohya[f"{stem}.alpha"]) / len(parts) if f"{stem}.alpha" in kohya else float(rank)
        row = 0
        for j, part in enumerate(parts):
            a = down[j * rank:(j + 1) * rank]
            dim = up.shape[0] - row if j == len(parts) - 1 else a.shape[1]
            b = up[row:row + dim, j * rank:(j + 1) * rank]
            row += dim
            if len(parts) > 1 and not a.any():  # a part that was not trained
                continue
            name = f"{blocks}.{match.group(2)}.{part}"
            layers[f"{name}.lora_A.weight"], layers[f"{name}.lora_B.weight"] = a.contiguous(), b.contiguous()
            alphas[name] = alpha
    return layers, alphas


def _write(out: dict[str, torch.Tensor], name: str, down: torch.Tensor, up: torch.Tensor, alpha: float) -> None:
    out[f"{name}.lora_down.weight"] = down.contiguous()
    out[f"{name}.lora_up.weight"] = up.contiguous()
    out[f"{name}.alpha"] = torch.tensor(float(alpha))
