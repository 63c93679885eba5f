"""The tiny offline base model: a real StableDiffusionPipeline folder with random weights."""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import StableDiffusionPipeline
from safetensors.torch import load_file

from facecraft_pipeline.lora import TINY_DESCRIPTION, build_tiny_sd


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    tensors: dict[str, torch.Tensor] = {}
    for file in sorted(folder.glob("*/*.safetensors")):
        tensors.update({f"{file.parent.name}.{k}": v for k, v in load_file(file).items()})
    return tensors


def test_tiny_model_loads_through_from_pretrained_and_generates_64px_images(tiny_base) -> None:
    pipe = StableDiffusionPipeline.from_pretrained(tiny_base.location)
    pipe.set_progress_bar_config(disable=True)

    images = pipe(
        "a photo", num_inference_steps=2, num_images_per_prompt=2, generator=torch.Generator().manual_seed(0)
    ).images

    assert [image.size for image in images] == [(64, 64), (64, 64)]
    assert pipe.safety_checker is None
    assert len(pipe.tokenizer.get_vocab()) == 514
    assert 0.5e6 < sum(p.numel() for p in pipe.unet.parameters()) < 2e6


def test_tiny_model_folder_says_its_images_are_noise(tiny_base) -> None:
    assert TINY_DESCRIPTION == "tiny random base model: images are noise"
    assert TINY_DESCRIPTION in (Path(tiny_base.location) / "README.md").read_text()


def test_same_seed_builds_identical_weights_and_another_seed_does_not(tmp_path: Path) -> None:
    first = _weights(build_tiny_sd(tmp_path / "a", seed=3))
    again = _weights(build_tiny_sd(tmp_path / "b", seed=3))
    other = _weights(build_tiny_sd(tmp_path / "c", seed=4))

    assert first.keys() == again.keys() == other.keys()
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_building_again_reuses_the_folder_and_a_new_seed_rebuilds_it(tmp_path: Path) -> None:
    folder = build_tiny_sd(tmp_path / "tiny", seed=0)
    unet_file = next((folder / "unet").glob("*.safetensors"))
    stamp = unet_file.stat().st_mtime_ns

    assert build_tiny_sd(folder, seed=0) == folder
    assert unet_file.stat().st_mtime_ns == stamp

    seed_0 = _weights(folder)
    build_tiny_sd(folder, seed=1)
    seed_1 = _weights(folder)

    assert not torch.equal(seed_0["unet.conv_in.weight"], seed_1["unet.conv_in.weight"])
    assert [p.name for p in tmp_path.iterdir()] == ["tiny"]  # no staging folders left behind
