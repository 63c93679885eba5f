"""Shared fixtures: a small set of drawn 'faces' on disk and tiny fast settings."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from facecraft_pipeline.gan import GanSettings
from facecraft_pipeline.training import RunSettings


def draw_face(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    """A skin-coloured oval with two dark eyes and a mouth on a random background, jittered."""
    w, h = size
    image = Image.new("RGB", size, tuple(int(v) for v in rng.integers(0, 90, 3)))
    draw = ImageDraw.Draw(image)
    dx, dy = rng.integers(-w // 12, w // 12 + 1), rng.integers(-h // 12, h // 12 + 1)
    skin = tuple(int(v) for v in rng.integers(150, 256, 3))
    draw.ellipse((w * 0.2 + dx, h * 0.1 + dy, w * 0.8 + dx, h * 0.9 + dy), fill=skin)
    for ex in (0.37, 0.63):
        draw.ellipse((w * ex - w * 0.05 + dx, h * 0.38 + dy, w * ex + w * 0.05 + dx, h * 0.46 + dy), fill=(20, 20, 20))
    draw.line((w * 0.4 + dx, h * 0.68 + dy, w * 0.6 + dx, h * 0.68 + dy), fill=(140, 30, 30), width=max(1, h // 24))
    return image


def drawn_faces(folder: Path, count: int, size: tuple[int, int], seed: int = 0) -> list[Path]:
    """`count` drawn faces of one size saved as face_<i>.png in `folder` (deterministic for a seed)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        path = folder / f"face_{i:02d}.png"
        draw_face(rng, size).save(path)
        paths.append(path)
    return paths


def demo_faces() -> list[Image.Image]:
    """The demo album's two real, public-domain faces (matplotlib's Grace Hopper, scikit-image's astronaut), cropped square."""
    from matplotlib import cbook
    from skimage import data

    with Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as hopper:
        owner = hopper.convert("RGB").crop((273 - 110, 232 - 110, 273 + 110, 232 + 110))
    other = Image.fromarray(data.astronaut()).crop((220 - 55, 121 - 55, 220 + 55, 121 + 55))
    return [owner, other]


def real_faces(folder: Path, count: int, person: int = 0, side: int = 32) -> list[Path]:
    """`count` distinct crops (shifted, some mirrored) of one of the demo's real faces, saved as PNGs."""
    folder.mkdir(parents=True, exist_ok=True)
    face = demo_faces()[person]
    margin = face.width // 10
    paths = []
    for i in range(count):
        dx, dy = (i * 3) % margin, (i * 7) % margin
        crop = face.crop((dx, dy, face.width - margin + dx, face.height - margin + dy)).resize((side, side), Image.Resampling.LANCZOS)
        path = folder / f"p{person}_{i:02d}.png"
        (crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if i % 2 else crop).save(path)
        paths.append(path)
    return paths


@pytest.fixture(scope="session")
def face_paths(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """24 faces in mixed sizes (incl. non-square), modes and formats, as a crop folder might hold."""
    folder = tmp_path_factory.mktemp("faces")
    rng = np.random.default_rng(0)
    paths = []
    for i in range(24):
        image = draw_face(rng, [(40, 40), (64, 64), (48, 60)][i % 3])
        if i % 4 == 1:
            path = folder / f"face_{i:02d}.jpg"
            image.save(path, quality=90)
        else:
            path = folder / f"face_{i:02d}.png"
            (image.convert("RGBA") if i % 4 == 2 else image).save(path)
        paths.append(path)
    return paths


TINY = GanSettings(resolution=16, batch_size=8, latent_dim=16, base_channels=8, sample_count=4,
                   run=RunSettings(steps=20, checkpoint_every=10, sample_every=10, log_every=5))
RUN_FIELDS = {f.name for f in dataclasses.fields(RunSettings)}


def tiny(**changes: object) -> GanSettings:
    """Settings small enough for a step to take milliseconds on a CPU core (run fields may be given flat)."""
    run = {k: changes.pop(k) for k in list(changes) if k in RUN_FIELDS}
    settings = dataclasses.replace(TINY, **changes)  # type: ignore[arg-type]
    return dataclasses.replace(settings, run=dataclasses.replace(settings.run, **run))  # type: ignore[arg-type]
