"""Which pipeline a base model needs (SD 1.x/2.x or SDXL), read without loading weights."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

from facecraft_pipeline.lora import BaseModel, resolve_base_model


def test_single_files_say_their_family_through_their_tensor_names(tmp_path: Path) -> None:
    xl, sd = tmp_path / "sd_xl_base.safetensors", tmp_path / "v1-5.safetensors"
    save_file({"conditioner.embedders.1.model.ln_final.weight": torch.zeros(1)}, xl)
    save_file({"cond_stage_model.transformer.text_model.final_layer_norm.weight": torch.zeros(1)}, sd)
    renamed = tmp_path / "model.safetensors"
    save_file({"conditioner.embedders.1.model.ln_final.weight": torch.zeros(1)}, renamed)

    assert resolve_base_model(str(xl), tmp_path).family == "sdxl"
    assert resolve_base_model(str(sd), tmp_path).family == "sd"
    assert resolve_base_model(str(renamed), tmp_path).family == "sdxl"  # by content, not by name
    assert resolve_base_model(str(sd), tmp_path, family="sdxl").family == "sdxl"  # said outright wins


def test_folders_say_their_family_through_model_index(tiny_base: BaseModel, model_cache: Path) -> None:
    xl = resolve_base_model("tiny-sdxl", model_cache)
    assert (tiny_base.family, xl.family) == ("sd", "sdxl")
    assert resolve_base_model(xl.location, model_cache).family == "sdxl"
    assert "SDXL" in resolve_base_model(xl.location, model_cache).description
