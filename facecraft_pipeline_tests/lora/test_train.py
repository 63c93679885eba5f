"""LoRA training: real effect on the UNet, exact save/reload (alpha != rank), resume, reuse."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from facecraft_pipeline.lora import (
    BaseModel,
    LoraSettings,
    base_model_of,
    generate,
    load_lora_pipeline,
    load_pipeline,
    train_lora,
)
from facecraft_pipeline.training import ProgressLine, RunSettings, TrainResult

# alpha != rank on purpose: a reload that ignored the saved adapter config would scale the update wrongly.
SETTINGS = LoraSettings(rank=4, alpha=8.0, learning_rate=1e-3, run=RunSettings(steps=20, checkpoint_every=10, seed=7))


def with_run(settings: LoraSettings, **run: object) -> LoraSettings:
    return replace(settings, run=replace(settings.run, **run))
PROMPT = SETTINGS.instance_prompt


@dataclass
class TrainedRun:
    result: TrainResult
    pipe: object  # the pipeline trained in place
    lines: list[ProgressLine]


@pytest.fixture(scope="module")
def trained(
    tmp_path_factory: pytest.TempPathFactory, face_images: list[Path], model_cache: Path, tiny_base: BaseModel
) -> TrainedRun:
    pipe = load_pipeline(tiny_base, "cpu")
    lines: list[ProgressLine] = []
    result = train_lora(face_images, tmp_path_factory.mktemp("lora"), SETTINGS, "cpu", model_cache, [lines.append], pipe=pipe)
    return TrainedRun(result, pipe, lines)


def _pixels(images) -> np.ndarray:
    return np.stack([np.asarray(image) for image in images])


def _unet_output(pipe) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn(1, 4, 32, 32, generator=generator)
    prompt = torch.randn(1, 77, 32, generator=generator)
    with torch.no_grad():
        return pipe.unet(latents, torch.tensor([500]), prompt).sample


def test_training_writes_weights_and_the_facts_of_the_run(trained: TrainedRun, tiny_base: BaseModel) -> None:
    result = trained.result
    facts = json.loads((result.folder / "run.json").read_text())

    assert result.artifact("weights") == result.folder / "pytorch_lora_weights.safetensors"
    assert result.artifact("weights").is_file()
    assert (result.steps, result.resumed_from, result.reused) == (20, 0, False)
    assert (result.device, result.dtype) == ("cpu", "float32")
    assert math.isfinite(result.metrics["loss"]) and result.metrics["loss"] > 0
    assert result.images_per_second > 0
    assert base_model_of(result) == tiny_base
    assert facts["base_model"]["description"] == "tiny random base model: images are noise"
    assert (facts["settings"]["rank"], facts["settings"]["alpha"], facts["settings"]["run"]["steps"]) == (4, 8.0, 20)
    assert facts["inputs"]["images"] == 6


def test_progress_arrives_every_ten_steps_with_finite_loss_and_speed(trained: TrainedRun) -> None:
    assert [line.step for line in trained.lines] == [10, 20]
    assert all(math.isfinite(line.metrics["loss"]) and line.images_per_second > 0 for line in trained.lines)
    assert trained.lines[-1].metrics == trained.result.metrics


def test_the_lora_changes_what_the_unet_predicts(trained: TrainedRun, tiny_base: BaseModel) -> None:
    base = load_pipeline(tiny_base, "cpu")
    assert not torch.allclose(_unet_output(trained.pipe), _unet_output(base))


def test_the_weights_file_records_the_adapter_config_so_alpha_survives(trained: TrainedRun) -> None:
    with safe_open(trained.result.artifact("weights"), "pt") as file:
        metadata = json.loads(file.metadata()["lora_adapter_metadata"])
    tensors = load_file(trained.result.artifact("weights"))

    assert (metadata["unet.r"], metadata["unet.lora_alpha"]) == (4, 8.0)
    assert sorted(metadata["unet.target_modules"]) == ["to_k", "to_out.0", "to_q", "to_v"]
    assert tensors and all(key.startswith("unet.") for key in tensors)
    assert all(t.dtype == torch.float32 for t in tensors.values())


def test_reloading_the_weights_reproduces_the_trained_model_to_the_pixel(
    trained: TrainedRun, tiny_base: BaseModel
) -> None:
    reloaded = load_lora_pipeline(tiny_base, trained.result.folder)
    base = load_pipeline(tiny_base, "cpu")

    in_memory = _pixels(generate(trained.pipe, PROMPT, n=2, seed=11, steps=4))
    from_disk = _pixels(generate(reloaded, PROMPT, n=2, seed=11, steps=4))
    without_lora = _pixels(generate(base, PROMPT, n=2, seed=11, steps=4))

    assert np.array_equal(in_memory, from_disk)
    assert not np.array_equal(from_disk, without_lora)


def test_a_finished_run_with_the_same_settings_is_reused(
    trained: TrainedRun, face_images: list[Path], model_cache: Path
) -> None:
    before = trained.result.artifact("weights").read_bytes()
    lines: list[ProgressLine] = []

    again = train_lora(face_images, trained.result.folder.parent, SETTINGS, "cpu", model_cache, [lines.append])

    assert again.reused and lines == []
    assert trained.result.artifact("weights").read_bytes() == before
    assert (again.folder, again.steps, again.metrics) == (trained.result.folder, 20, trained.result.metrics)


def test_an_interrupted_run_resumes_from_its_checkpoint_and_ends_where_an_uninterrupted_one_does(
    trained: TrainedRun, face_images: list[Path], model_cache: Path, tmp_path: Path
) -> None:
    def stop_at_ten(line: ProgressLine) -> None:
        if line.step == 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_lora(face_images, tmp_path, SETTINGS, "cpu", model_cache, [stop_at_ten])
    assert not list(tmp_path.rglob("pytorch_lora_weights.safetensors"))

    resumed = train_lora(face_images, tmp_path, SETTINGS, "cpu", model_cache)

    assert (resumed.resumed_from, resumed.steps, resumed.reused) == (10, 20, False)
    assert resumed.metrics["loss"] == pytest.approx(trained.result.metrics["loss"])
    expected, actual = load_file(trained.result.artifact("weights")), load_file(resumed.artifact("weights"))
    assert expected.keys() == actual.keys()
    assert all(torch.equal(expected[k], actual[k]) for k in expected)


def test_asking_for_more_steps_continues_a_finished_run(
    trained: TrainedRun, face_images: list[Path], model_cache: Path, tmp_path: Path
) -> None:
    shutil.copytree(trained.result.folder.parent, tmp_path, dirs_exist_ok=True)

    longer = train_lora(face_images, tmp_path, with_run(SETTINGS, steps=30), "cpu", model_cache)

    assert (longer.resumed_from, longer.steps, longer.reused, longer.key) == (20, 30, False, trained.result.key)


def test_changed_training_images_are_not_reused(
    trained: TrainedRun, face_images: list[Path], model_cache: Path, tmp_path: Path
) -> None:
    shutil.copytree(trained.result.folder.parent, tmp_path, dirs_exist_ok=True)

    fewer = train_lora(face_images[:3], tmp_path, with_run(SETTINGS, steps=2), "cpu", model_cache)

    assert (fewer.reused, fewer.resumed_from, fewer.steps) == (False, 0, 2)
    assert fewer.key != trained.result.key and fewer.folder.name.startswith("00001-")


def test_bf16_keeps_frozen_weights_in_bf16_and_trains_the_lora_in_fp32(
    face_images: list[Path], model_cache: Path, tmp_path: Path
) -> None:
    settings = with_run(replace(SETTINGS, batch_size=1, resolution=32), steps=1, mixed_precision="bf16")

    result = train_lora(face_images[:1], tmp_path, settings, "cpu", model_cache)

    assert result.dtype == "bfloat16"
    assert math.isfinite(result.metrics["loss"])
    assert {t.dtype for t in load_file(result.artifact("weights")).values()} == {torch.float32}


def test_the_uncached_loop_with_flips_and_min_snr_weighting_trains(
    face_images: list[Path], model_cache: Path, tmp_path: Path
) -> None:
    settings = with_run(replace(SETTINGS, cache_latents=False, random_flip=True, snr_gamma=5.0), steps=2)

    result = train_lora(face_images[:2], tmp_path, settings, "cpu", model_cache)

    assert math.isfinite(result.metrics["loss"]) and result.metrics["loss"] > 0
    ups = [t for k, t in load_file(result.artifact("weights")).items() if k.endswith("lora.up.weight")]  # B: zero at start
    assert ups and all(t.abs().sum() > 0 for t in ups)


def test_settings_reject_values_that_cannot_work() -> None:
    with pytest.raises(ValueError, match="LoraSettings.rank must be >= 1"):
        LoraSettings(rank=0)
    with pytest.raises(ValueError, match="multiple of 8"):
        LoraSettings(resolution=100)
