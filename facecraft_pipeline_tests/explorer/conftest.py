"""Small GANs trained for a few steps through the public API (one identity-conditioned), a data root, and a browser."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from facecraft_pipeline.gan import GanSettings, train_gan
from facecraft_pipeline.gan.conditioning import IdentityCondition
from facecraft_pipeline.training.settings import RunSettings
from facecraft_pipeline_tests.gan.conftest import drawn_faces

CHROMIUM = "/usr/bin/chromium"
SETTINGS = GanSettings(resolution=32, batch_size=8, latent_dim=32, base_channels=8, sample_count=4,
                       run=RunSettings(steps=150, checkpoint_every=150, sample_every=150, log_every=50))


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """checkpoint.pt of a 32 px DCGAN trained 150 steps on drawn faces (~7 s on one core)."""
    paths = drawn_faces(tmp_path_factory.mktemp("explorer_faces"), 16, (32, 32))
    return train_gan(paths, tmp_path_factory.mktemp("explorer_gan"), SETTINGS).artifact("checkpoint")


PEOPLE = ("owner", "cluster-1", "cluster-2")  # named as the library names them


@pytest.fixture(scope="session")
def conditioned_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """checkpoint.pt of a 32 px identity-conditioned GAN trained 60 steps on three drawn 'people' (8 faces each, told
    apart by their colours, identity vectors around three separated centres), keeping each person's centroid for the picker."""
    folder = tmp_path_factory.mktemp("explorer_people")
    paths = [p for person in range(len(PEOPLE)) for p in drawn_faces(folder / PEOPLE[person], 8, (32, 32), seed=person)]
    for i, path in enumerate(paths):  # person k's colour channels rolled by k: skin and background differ between people
        with Image.open(path) as face:
            Image.fromarray(np.roll(np.asarray(face), i // 8, axis=2)).save(path)
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(len(PEOPLE), 32))
    vectors = torch.from_numpy(np.repeat(centres, 8, axis=0) + 0.05 * rng.normal(size=(len(paths), 32))).float()
    people = {name: vectors[8 * i : 8 * i + 8].mean(0) for i, name in enumerate(PEOPLE)}
    run = dataclasses.replace(SETTINGS.run, steps=60, checkpoint_every=60, sample_every=0)
    settings = dataclasses.replace(SETTINGS, condition="identity", ema_decay=0.0, lr_g=1e-3, lr_d=1e-3, run=run)
    result = train_gan(paths, tmp_path_factory.mktemp("explorer_conditioned_gan"), settings,
                       identity=IdentityCondition(vectors, vectors[:8], people))
    return result.artifact("checkpoint")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    root = tmp_path / "home"
    root.mkdir()
    return root


@pytest.fixture(scope="package")  # not session: Playwright's sync API keeps an event loop running until it stops
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


class Served:
    def __init__(self, explorer, server):
        self.explorer, self.server = explorer, server
        self.url = f"http://127.0.0.1:{server.server_address[1]}/"


def serve(checkpoint: Path, home: Path) -> Iterator[Served]:
    from facecraft_pipeline.explorer.server import make_server
    from facecraft_pipeline.explorer.state import Explorer

    explorer = Explorer(home, n_directions=6, n_samples=512)
    explorer.load(str(checkpoint))
    server = make_server(explorer, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Served(explorer, server)
    server.shutdown()
    server.server_close()


@pytest.fixture
def served(checkpoint: Path, home: Path) -> Iterator[Served]:
    yield from serve(checkpoint, home)


@pytest.fixture
def served_conditioned(conditioned_checkpoint: Path, home: Path) -> Iterator[Served]:
    yield from serve(conditioned_checkpoint, home)
