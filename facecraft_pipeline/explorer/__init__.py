"""The face explorer: sliders, randomize, characters, mixing, latent walks; served locally or as a static site.

Kept import-light (no torch at import), so `explorer_url` can be used from Dagster assets.
"""

from __future__ import annotations

from facecraft_pipeline.env import env_int

DEFAULT_PORT = 8765


def explorer_port() -> int:
    return env_int("FACECRAFT_EXPLORER_PORT", DEFAULT_PORT)


def explorer_url(model: str | None = None) -> str:
    """Where `facecraft explore` serves (the port is `--port` or $FACECRAFT_EXPLORER_PORT)."""
    from urllib.parse import quote

    url = f"http://127.0.0.1:{explorer_port()}/"
    return url + (f"?model={quote(model, safe='')}" if model else "")
