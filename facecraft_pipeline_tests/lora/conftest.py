"""Shared fixtures: the tiny base model built once, and a few real-photo face crops on disk."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from skimage import data

from facecraft_pipeline.lora import BaseModel, resolve_base_model


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model_cache")


@pytest.fixture(scope="session")
def tiny_base(model_cache: Path) -> BaseModel:
    return resolve_base_model("tiny", model_cache)


@pytest.fixture(scope="session")
def face_images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Six crops around the astronaut's face, square and not, larger than the training size."""
    photo = data.astronaut()
    folder = tmp_path_factory.mktemp("faces")
    boxes = [
        (20, 150, 220, 350),
        (0, 120, 240, 360),
        (40, 170, 200, 330),
        (10, 160, 230, 340),
        (30, 140, 190, 380),
        (0, 100, 300, 400),
    ]
    paths = []
    for index, (top, left, bottom, right) in enumerate(boxes):
        path = folder / f"face_{index}.png"
        Image.fromarray(photo[top:bottom, left:right]).save(path)
        paths.append(path)
    return paths
