"""Resolving the base-model setting: tiny, a local folder, a hub id (offline), a single checkpoint file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from facecraft_pipeline.lora import BaseModel, BaseModelUnavailable, load_pipeline, resolve_base_model

UNCACHED_HUB_ID = "facecraft-tests/no-such-model-in-any-cache"


def test_tiny_resolves_to_a_built_folder_in_the_cache(model_cache: Path, tiny_base: BaseModel) -> None:
    assert tiny_base.spec == "tiny"
    assert tiny_base.is_tiny_random
    assert Path(tiny_base.location) == model_cache / "tiny-sd"
    assert (Path(tiny_base.location) / "model_index.json").is_file()
    assert tiny_base.description == "tiny random base model: images are noise"


def test_a_local_diffusers_folder_is_used_where_it_is(tmp_path: Path, tiny_base: BaseModel) -> None:
    folder = tmp_path / "my-sd"
    shutil.copytree(tiny_base.location, folder, ignore=shutil.ignore_patterns("facecraft_tiny_sd.json"))

    base = resolve_base_model(str(folder), tmp_path / "cache")
    pipe = load_pipeline(base, "cpu")

    assert base == BaseModel(str(folder), str(folder.resolve()), False, f"local model folder {folder}")
    assert pipe.unet.config.sample_size == 32
    assert not (tmp_path / "cache").exists()  # nothing built or downloaded


def test_a_folder_built_as_the_tiny_model_is_known_to_be_random(tiny_base: BaseModel, tmp_path: Path) -> None:
    base = resolve_base_model(tiny_base.location, tmp_path)
    assert base.is_tiny_random
    assert "images are noise" in base.description


def test_an_uncached_hub_id_offline_fails_at_once_saying_how_to_fix_it(tmp_path: Path) -> None:
    with pytest.raises(BaseModelUnavailable) as error:
        resolve_base_model(UNCACHED_HUB_ID, tmp_path)

    message = str(error.value)
    assert UNCACHED_HUB_ID in message
    assert "HF_HUB_OFFLINE=0" in message
    assert "download" in message


def test_loading_an_uncached_hub_model_offline_fails_with_the_same_advice() -> None:
    base = BaseModel(UNCACHED_HUB_ID, UNCACHED_HUB_ID, False, f"hub model {UNCACHED_HUB_ID}")
    with pytest.raises(BaseModelUnavailable, match="HF_HUB_OFFLINE=0"):
        load_pipeline(base, "cpu")


def test_checkpoint_files_and_urls_take_the_single_file_route(tmp_path: Path) -> None:
    checkpoint = tmp_path / "v1-5-pruned-emaonly.safetensors"
    checkpoint.write_bytes(b"not really weights")
    url = "https://huggingface.co/stable-diffusion-v1-5/stable-diffusion-v1-5/blob/main/v1-5-pruned-emaonly.safetensors"

    local = resolve_base_model(str(checkpoint), tmp_path)
    remote = resolve_base_model(url, tmp_path)

    assert local.is_single_file and local.location == str(checkpoint.resolve()) and not local.is_tiny_random
    assert remote.is_single_file and remote.location == url
    with pytest.raises(BaseModelUnavailable, match="does not exist"):
        resolve_base_model(str(tmp_path / "missing.ckpt"), tmp_path)


def test_specs_that_name_nothing_loadable_are_rejected(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    with pytest.raises(BaseModelUnavailable, match=r"model_index\.json"):
        resolve_base_model(str(tmp_path / "photos"), tmp_path)
    with pytest.raises(ValueError, match="hub id"):
        resolve_base_model("not a model", tmp_path)
