"""Z-Image, the second flow-matching family, in the same trainer on tiny-zimage (every layer, few channels, random:
images are noise): trains, reloads with ZImagePipeline.load_lora_weights to the same pixels, resumes exactly."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from facecraft_pipeline.lora import Example, LoraSettings, load_pipeline, read_metadata, resolve_base_model, train_lora
from facecraft_pipeline.training import ProgressLine, RunSettings

PROMPT = "photo of sks person"
SETTINGS = LoraSettings(base_model="tiny-zimage", rank=4, alpha=8.0, learning_rate=5e-3, batch_size=2, max_sequence_length=32,
                        face_loss_strength=0.5, ema_decay=0.5, random_flip=True, validation_steps=2,
                        run=RunSettings(steps=4, checkpoint_every=2, log_every=2, seed=5))


def examples(paths: list[Path]) -> list[Example]:
    return [Example(p, f"{PROMPT}, face turned to the left", f"{PROMPT}, face turned to the right", (16.0, 12.0, 48.0, 50.0))
            for p in paths[:3]]


def _pixels(pipe) -> np.ndarray:
    images = pipe([PROMPT], num_inference_steps=2, guidance_scale=0.0, height=64, width=64, max_sequence_length=32,
                  generator=[torch.Generator().manual_seed(3)]).images
    return np.stack([np.asarray(i) for i in images])


@pytest.fixture(scope="module")
def trained(tmp_path_factory, face_images, model_cache):
    base = resolve_base_model("tiny-zimage", model_cache)
    pipe = load_pipeline(base)
    result = train_lora(examples(face_images), tmp_path_factory.mktemp("zimage"), SETTINGS, "cpu", model_cache, pipe=pipe)
    return base, result, pipe


def test_tiny_zimage_trains_through_the_run_protocol_and_says_it_draws_noise(trained) -> None:
    base, result, pipe = trained
    assert (base.family, type(pipe).__name__, base.is_tiny_random) == ("zimage", "ZImagePipeline", True)
    assert "noise" in base.description and result.metrics["loss"] > 0
    assert len(pipe.transformer.layers) == 30 and len(pipe.transformer.noise_refiner) == 2
    assert read_metadata(result.artifact("weights"))["facecraft.family"] == "zimage"
    assert "kohya_weights" not in result.artifacts  # no kohya layout for Z-Image: the diffusers file only
    assert sorted(p.name for p in (result.folder / "checkpoints").glob("step-*")) == ["step-2", "step-4"]


def test_the_weights_load_with_zimage_load_lora_weights_to_the_same_pixels(trained) -> None:
    base, result, pipe = trained
    reloaded, plain = load_pipeline(base), load_pipeline(base)
    reloaded.load_lora_weights(str(result.folder))
    tensors = load_file(result.artifact("weights"))

    assert any(".layers.29.feed_forward.w2." in k for k in tensors) and any(".context_refiner.1." in k for k in tensors)
    assert np.array_equal(_pixels(pipe), _pixels(reloaded))
    assert not np.array_equal(_pixels(reloaded), _pixels(plain))


def test_resume_ends_where_uninterrupted_training_does(trained, face_images, model_cache, tmp_path: Path) -> None:
    _, result, _ = trained

    def stop(line: ProgressLine) -> None:
        if line.step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_lora(examples(face_images), tmp_path, SETTINGS, "cpu", model_cache, [stop])
    resumed = train_lora(examples(face_images), tmp_path, SETTINGS, "cpu", model_cache)

    expected, actual = load_file(result.artifact("weights")), load_file(resumed.artifact("weights"))
    assert resumed.resumed_from == 2 and expected.keys() == actual.keys()
    assert all(torch.equal(expected[k], actual[k]) for k in expected)


def test_a_resolution_zimage_cannot_take_is_refused(face_images, model_cache, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="LoraSettings.resolution must be a multiple of 16 for zimage"):
        train_lora(face_images[:1], tmp_path, replace(SETTINGS, resolution=40), "cpu", model_cache)
