"""Dagster resources: the few things every asset shares (data root, device, MLflow, photo source).

Each is a thin, configurable wrapper that hands back a plain library object, so the libraries
stay Dagster-free. Field defaults are the library defaults; each `from_env(env)` reads the environment
mapping (FACECRAFT_*, MLFLOW_TRACKING_URI) it is handed when the Definitions are built
(`definitions.build_resources(env)`), never at import, through `facecraft_pipeline.env`.

The photo source is a small family behind one resource key, `photo_source`:
`DemoAlbumResource`, `LocalFolderResource` and `OneDriveResource`, each with only its own
config; `photo_source_from_env(env)` picks one by FACECRAFT_SOURCE.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import dagster as dg
import pydantic

from facecraft_pipeline.env import env_bool, env_int, env_optional, env_str
from facecraft_pipeline.home import Home, default_home
from facecraft_pipeline.mlflow_store import configured_uri, is_remote_uri, store_uri
from facecraft_pipeline.settings.dagster_config import config_class, to_settings
from facecraft_pipeline.sources.base import PhotoSource
from facecraft_pipeline.sources.local_settings import LocalFolderSettings
from facecraft_pipeline.sources.onedrive_settings import OneDriveSettings


class HomeResource(dg.ConfigurableResource):
    """The data root: photos, crops, datasets, checkpoints, galleries, MLflow store."""

    root: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> HomeResource:
        """$FACECRAFT_HOME, else `data/` in the checkout."""
        return cls(root=str(default_home(env)))

    def home(self) -> Home:
        return Home(Path(self.root).expanduser().resolve())


class ComputeResource(dg.ConfigurableResource):
    """Where tensors go: `auto` picks cuda, then mps, then cpu.

    `cpu_threads` caps torch's intra-op threads (0 = torch's default): the demo's tiny networks
    gain less from a second thread (1.4-1.6x) than from a second step running beside them on
    that core (the `everything` job runs independent steps in parallel processes: `step_processes`).
    """

    device: str = "auto"
    cpu_threads: int = 1
    progress_bar: bool = False  # training draws a progress bar on the terminal (`facecraft materialize` sets it per run)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ComputeResource:
        return cls(device=env_str("FACECRAFT_DEVICE", "auto", env), cpu_threads=env_int("FACECRAFT_CPU_THREADS", 1, env))

    def step_processes(self) -> int:
        """How many steps may run at once on this machine without oversubscribing its cores."""
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1  # a container's share
        return max(1, cores // self.cpu_threads) if self.cpu_threads > 0 else 1

    def torch_device(self):
        import torch

        if self.cpu_threads > 0:
            torch.set_num_threads(self.cpu_threads)
        choice = self.device.lower()
        if choice == "auto":
            if torch.cuda.is_available():
                return torch.device("cuda")
            if torch.backends.mps.is_available():
                return torch.device("mps")
            return torch.device("cpu")
        if choice.startswith("cuda") and not torch.cuda.is_available():
            raise dg.Failure(f"device {self.device!r} was asked for but CUDA is not available on this machine")
        if choice == "mps" and not torch.backends.mps.is_available():
            raise dg.Failure("device 'mps' was asked for but MPS is not available on this machine")
        return torch.device(choice)


class MlflowResource(dg.ConfigurableResource):
    """MLflow tracking: `MLFLOW_TRACKING_URI` if set, else a SQLite store in the data root."""

    tracking_uri: str | None = None
    experiment: str = "facecraft"
    # Face crops, contact sheets and samples are personal. None (the default): logged to a store
    # on this machine, not to a tracking server (http...); FACECRAFT_MLFLOW_IMAGES=on sends them
    # to a server too, =off keeps them out everywhere. Metrics, params and lineage are always logged.
    log_images: bool | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> MlflowResource:
        """MLFLOW_TRACKING_URI, FACECRAFT_MLFLOW_EXPERIMENT, FACECRAFT_MLFLOW_IMAGES (on/off; unset: by tracking URI)."""
        return cls(
            tracking_uri=configured_uri(env),
            experiment=env_str("FACECRAFT_MLFLOW_EXPERIMENT", "facecraft", env),
            log_images=env_bool("FACECRAFT_MLFLOW_IMAGES", True, env) if env_optional("FACECRAFT_MLFLOW_IMAGES", env) else None,
        )

    def lineage(self, home: Home):
        from facecraft_pipeline.lineage import Lineage

        artifacts = home.mlflow_artifacts  # creates the store's folder in the data root
        uri = store_uri(home.root, self.tracking_uri)
        images = self.log_images if self.log_images is not None else not is_remote_uri(uri)
        return Lineage(uri, self.experiment, artifact_location=artifacts, log_images=images)


class PhotoSourceResource(dg.ConfigurableResource):
    """The `photo_source` resource: where photos come from. Use one of its kinds below."""

    kind: ClassVar[str] = ""

    def build(self, home: Home) -> PhotoSource:
        raise NotImplementedError(f"{type(self).__name__} is not a photo source: use DemoAlbumResource, "
                                  "LocalFolderResource or OneDriveResource")

    def state_dir(self, home: Home) -> Path:
        """Sync state of this source (delta links, hash caches, the OneDrive login record)."""
        return home.dir("state", "source", self.kind)

    def reference_photos(self, home: Home) -> list[Path]:
        """The owner's reference photos this source ships (only the demo album has any)."""
        return []


class DemoAlbumResource(PhotoSourceResource):
    """The offline demo album, built from public-domain photos shipped in dependencies."""

    kind: ClassVar[str] = "demo"

    def build(self, home: Home) -> PhotoSource:
        from facecraft_pipeline.sources.demo_album import DemoAlbumSource

        return DemoAlbumSource(home.dir("photos", "demo-album"), state_dir=self.state_dir(home))

    def reference_photos(self, home: Home) -> list[Path]:
        from facecraft_pipeline.sources.demo_album import demo_reference_photos

        return demo_reference_photos(home.dir("photos", "demo-reference"))


LocalFolderConfig = config_class(LocalFolderSettings, "local_folder")
OneDriveConfig = config_class(OneDriveSettings, "one_drive")


class LocalFolderResource(PhotoSourceResource):
    """A folder on this machine; photos stay in place (nothing is copied)."""

    kind: ClassVar[str] = "local"
    folder: str = pydantic.Field(default="", description="the photo folder ($FACECRAFT_PHOTOS_DIR)")
    settings: LocalFolderConfig = pydantic.Field(  # type: ignore[valid-type]
        default_factory=LocalFolderConfig, description="file types, size limit, sub-folders, symbolic links")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> LocalFolderResource:
        return cls(folder=env_str("FACECRAFT_PHOTOS_DIR", "", env))

    def local_settings(self) -> LocalFolderSettings:
        return to_settings(LocalFolderSettings, self.settings)

    def build(self, home: Home) -> PhotoSource:
        from facecraft_pipeline.sources.local import LocalFolderSource

        if not self.folder:
            raise dg.Failure("photo source 'local' needs a folder: set FACECRAFT_PHOTOS_DIR or the resource's `folder`")
        return LocalFolderSource(Path(self.folder).expanduser(), state_dir=self.state_dir(home),
                                 settings=self.local_settings(), data_root=home.root)


class OneDriveResource(PhotoSourceResource):
    """A OneDrive folder mirrored into the data root through Microsoft Graph (log in once: `facecraft login`)."""

    kind: ClassVar[str] = "onedrive"
    settings: OneDriveConfig = pydantic.Field(  # type: ignore[valid-type]
        default_factory=OneDriveConfig, description="which OneDrive folder to mirror, and how")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> OneDriveResource:
        """FACECRAFT_ONEDRIVE_CLIENT_ID, FACECRAFT_ONEDRIVE_TENANT, FACECRAFT_PHOTOS_DIR, FACECRAFT_GRAPH_URL."""
        defaults = OneDriveSettings()
        values = {
            "client_id": env_str("FACECRAFT_ONEDRIVE_CLIENT_ID", defaults.client_id, env),
            "tenant": env_str("FACECRAFT_ONEDRIVE_TENANT", defaults.tenant, env),
            "folder": env_str("FACECRAFT_PHOTOS_DIR", defaults.folder, env),
            "graph_base_url": env_str("FACECRAFT_GRAPH_URL", defaults.graph_base_url, env),
        }
        return cls(settings=OneDriveConfig(**values))

    def onedrive_settings(self) -> OneDriveSettings:
        return to_settings(OneDriveSettings, self.settings)

    def build(self, home: Home) -> PhotoSource:
        from facecraft_pipeline.sources.onedrive import OneDriveSource

        return OneDriveSource(self.onedrive_settings(), mirror_dir=home.dir("photos", "onedrive"),
                              state_dir=self.state_dir(home))


PHOTO_SOURCES: dict[str, type[PhotoSourceResource]] = {
    "demo": DemoAlbumResource, "local": LocalFolderResource, "onedrive": OneDriveResource,
}


def photo_source_from_env(env: Mapping[str, str]) -> PhotoSourceResource:
    """The `photo_source` resource FACECRAFT_SOURCE names (default: the demo album), configured from `env`."""
    kind = env_str("FACECRAFT_SOURCE", "demo", env).strip().lower()
    if kind not in PHOTO_SOURCES:
        raise ValueError(f"FACECRAFT_SOURCE={kind!r} is not a photo source: choose one of {sorted(PHOTO_SOURCES)}")
    cls = PHOTO_SOURCES[kind]
    from_env = getattr(cls, "from_env", None)
    return from_env(env) if from_env is not None else cls()
