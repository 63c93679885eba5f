"""A small GAN trained for a few steps through the public API, a data root, and a browser."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from facecraft_pipeline.gan import GanSettings, train_gan
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


@pytest.fixture
def served(checkpoint: Path, home: Path) -> Iterator[Served]:
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
