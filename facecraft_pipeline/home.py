"""Where FaceCraft keeps everything it makes: one data root, laid out the same for every run.

The root is `$FACECRAFT_HOME`, else `data/` inside the checkout (git-ignored). Photos, crops,
datasets, checkpoints, galleries, the MLflow store and Dagster's storage all live under it, so
personal photos never leave the machine unless a setting sends them elsewhere.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from facecraft_pipeline.env import env_optional
from facecraft_pipeline.mlflow_store import STORE_FOLDER

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def default_home(env: Mapping[str, str] | None = None) -> Path:
    """$FACECRAFT_HOME (of `env`, else of this process), else `data/` in the checkout."""
    return Path(env_optional("FACECRAFT_HOME", env) or PROJECT_ROOT / "data").expanduser().resolve()


@dataclass(frozen=True)
class Home:
    """Named folders under the data root (created on first use)."""

    root: Path

    def dir(self, *parts: str) -> Path:
        # Personal photos, faces and logins: only the owner may enter the data root (0700).
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.root.stat().st_mode & 0o077:
            os.chmod(self.root, 0o700)
        path = self.root.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def mlflow_artifacts(self) -> Path:
        """Artifacts of the MLflow store kept in the data root (mlflow_store.local_store), beside its database."""
        return self.dir(STORE_FOLDER, "artifacts")

    @property
    def models_cache(self) -> Path:
        """Base models (e.g. the tiny offline Stable Diffusion) built or downloaded once."""
        return self.dir("cache", "models")
