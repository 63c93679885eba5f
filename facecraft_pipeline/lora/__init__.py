"""Stable Diffusion LoRA: base models (incl. the tiny offline one), training, sampling. No Dagster here."""

from __future__ import annotations

from facecraft_pipeline.lora.adapter import WEIGHTS_NAME
from facecraft_pipeline.lora.base_model import BaseModel, BaseModelUnavailable, load_pipeline, resolve_base_model
from facecraft_pipeline.lora.sample import generate, load_lora_pipeline
from facecraft_pipeline.lora.settings import LoraSettings
from facecraft_pipeline.lora.tiny_sd import TINY, TINY_DESCRIPTION, build_tiny_sd
from facecraft_pipeline.lora.train import LoraTrainer, base_model_of, train_lora

__all__ = [
    "TINY",
    "TINY_DESCRIPTION",
    "WEIGHTS_NAME",
    "BaseModel",
    "BaseModelUnavailable",
    "LoraSettings",
    "LoraTrainer",
    "base_model_of",
    "build_tiny_sd",
    "generate",
    "load_lora_pipeline",
    "load_pipeline",
    "resolve_base_model",
    "train_lora",
]
