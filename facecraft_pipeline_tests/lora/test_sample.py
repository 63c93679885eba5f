"""Sampling: fixed seeds give identical pixels; sizes follow the model or the request."""

from __future__ import annotations

import numpy as np

from facecraft_pipeline.lora import BaseModel, generate, load_pipeline

PROMPT = "a photo of sks person"


def test_same_seed_same_pixels_other_seed_other_pixels(tiny_base: BaseModel) -> None:
    pipe = load_pipeline(tiny_base, "cpu")

    first = generate(pipe, PROMPT, n=2, seed=5, steps=3)
    again = generate(pipe, PROMPT, n=2, seed=5, steps=3)
    other = generate(pipe, PROMPT, n=2, seed=6, steps=3)

    assert len(first) == 2 and all(image.size == (64, 64) for image in first)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(np.asarray(first[0]), np.asarray(first[1]))
    assert not np.array_equal(np.asarray(first[0]), np.asarray(other[0]))


def test_each_image_keeps_its_own_noise_whatever_the_batching(tiny_base: BaseModel) -> None:
    pipe = load_pipeline(tiny_base, "cpu")

    together = generate(pipe, PROMPT, n=3, seed=5, steps=3)
    one_by_one = generate(pipe, PROMPT, n=3, seed=5, steps=3, batch_size=1)

    for a, b in zip(together, one_by_one, strict=True):
        assert np.abs(np.asarray(a, dtype=int) - np.asarray(b, dtype=int)).max() <= 2


def test_resolution_can_be_asked_for(tiny_base: BaseModel) -> None:
    pipe = load_pipeline(tiny_base, "cpu")
    assert generate(pipe, PROMPT, n=1, seed=0, steps=2, resolution=96)[0].size == (96, 96)
