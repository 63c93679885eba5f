"""Diffusion LoRA (SD 1.x/2.x, SDXL and FLUX.1): base models (incl. tiny offline ones), training, sampling, export.

No Dagster here. What a run leaves in its folder `<root>/<n>-lora-<family>-r<rank>-<px>px-<key>/`:

    pytorch_lora_weights.safetensors     diffusers format (`pipe.load_lora_weights(folder)`), adapter config and
                                         provenance (facecraft.* and kohya ss_* keys) in the header
    lora_kohya.safetensors               the same weights for kohya / A1111 / ComfyUI (lora_unet_*, lora_te*_*, alpha;
                                         FLUX.1: lora_unet_double_blocks_* / lora_unet_single_blocks_*);
                                         `pipe.load_lora_weights(folder, weight_name="lora_kohya.safetensors")` too
    validation.png                       fixed prompts x fixed seeds with the final weights (samples/ while training)
    checkpoints/checkpoint-<n>.pt        resumable state (LoRA, EMA, optimizer, lr schedule, RNG, step)
    checkpoints/step-<n>/pytorch_lora_weights.safetensors (+ lora_kohya.safetensors)
                                         a loadable LoRA beside each kept checkpoint (`run.keep_every` keeps them for
                                         the evaluation sweep); `checkpoint_weights(checkpoint_path, out_dir)` writes the
                                         same files for any checkpoint.
"""

from __future__ import annotations

from facecraft_pipeline.dataset.diffusion_crops import Example  # the one training-image type, made by the LoRA view
from facecraft_pipeline.lora.adapter import KOHYA_NAME, WEIGHTS_NAME, checkpoint_weights, read_metadata, to_kohya
from facecraft_pipeline.lora.base_model import BaseModel, BaseModelUnavailable, load_pipeline, resolve_base_model
from facecraft_pipeline.lora.sample import generate, load_lora_pipeline
from facecraft_pipeline.lora.settings import LoraSettings, PriorSettings
from facecraft_pipeline.lora.tiny_flux import TINY_FLUX, TINY_FLUX_DESCRIPTION, build_tiny_flux
from facecraft_pipeline.lora.tiny_sd import TINY, TINY_DESCRIPTION, TINY_XL, TINY_XL_DESCRIPTION, build_tiny_sd, build_tiny_sdxl
from facecraft_pipeline.lora.train import LoraTrainer, base_model_of, examples_digest, train_lora, weighted_mse

__all__ = [
    "KOHYA_NAME",
    "TINY",
    "TINY_DESCRIPTION",
    "TINY_FLUX",
    "TINY_FLUX_DESCRIPTION",
    "TINY_XL",
    "TINY_XL_DESCRIPTION",
    "WEIGHTS_NAME",
    "BaseModel",
    "BaseModelUnavailable",
    "Example",
    "LoraSettings",
    "LoraTrainer",
    "PriorSettings",
    "base_model_of",
    "build_tiny_flux",
    "build_tiny_sd",
    "build_tiny_sdxl",
    "checkpoint_weights",
    "examples_digest",
    "generate",
    "load_lora_pipeline",
    "load_pipeline",
    "read_metadata",
    "resolve_base_model",
    "to_kohya",
    "train_lora",
    "weighted_mse",
]
