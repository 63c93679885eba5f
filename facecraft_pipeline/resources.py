"""Dagster resources: the few things every asset shares (data root, device, MLflow, photo source).

Each is a thin, configurable wrapper that hands back a plain library object, so the libraries
stay Dagster-free. Defaults come from environment variables so `make demo`, `make dev` and
scheduled runs agree without extra config.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from facecraft_pipeline.home import Home, default_home
from facecraft_pipeline.sources.base import IMAGE_SUFFIXES, PhotoSource


class HomeResource(dg.ConfigurableResource):
    """The data root: photos, crops, datasets, checkpoints, galleries, MLflow store."""

    root: str = str(default_home())

    def home(self) -> Home:
        return Home(Path(self.root).expanduser().resolve())


class ComputeResource(dg.ConfigurableResource):
    """Where tensors go: `auto` picks cuda, then mps, then cpu.

    `cpu_threads` caps torch's intra-op threads (0 = torch's default): the demo's tiny networks
    run fastest on one thread, while two spin-wait against each other on a 2-core machine.
    """

    device: str = os.environ.get("FACECRAFT_DEVICE", "auto")
    cpu_threads: int = int(os.environ.get("FACECRAFT_CPU_THREADS", "1"))

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

    tracking_uri: str | None = os.environ.get("MLFLOW_TRACKING_URI")
    experiment: str = os.environ.get("FACECRAFT_MLFLOW_EXPERIMENT", "facecraft")
    # Face crops, contact sheets and samples are personal: turn this off before pointing
    # MLFLOW_TRACKING_URI at a shared server (metrics, params and lineage are still logged).
    log_images: bool = os.environ.get("FACECRAFT_MLFLOW_IMAGES", "on").lower() not in {"0", "off", "false", "no"}

    def lineage(self, home: Home):
        from facecraft_pipeline.lineage import Lineage

        uri = self.tracking_uri or f"sqlite:///{home.mlflow_db}"
        return Lineage(uri, self.experiment, artifact_location=home.mlflow_artifacts, log_images=self.log_images)


class PhotoSourceResource(dg.ConfigurableResource):
    """Which photo library to read: the offline `demo` album, a `local` folder, or `onedrive`."""

    kind: str = os.environ.get("FACECRAFT_SOURCE", "demo")
    folder: str | None = os.environ.get("FACECRAFT_PHOTOS_DIR")  # local: the folder; onedrive: the drive path
    recursive: bool = True
    suffixes: str = ",".join(IMAGE_SUFFIXES)  # image types to take (HEIC/HEIF decode through pillow-heif)
    max_file_mb: float = 200.0  # larger files are recorded as skipped
    onedrive_max_concurrency: int = 4
    onedrive_client_id: str = os.environ.get("FACECRAFT_ONEDRIVE_CLIENT_ID", "")
    onedrive_tenant: str = os.environ.get("FACECRAFT_ONEDRIVE_TENANT", "consumers")
    onedrive_graph_url: str = os.environ.get("FACECRAFT_GRAPH_URL", "https://graph.microsoft.com/v1.0")

    def state_dir(self, home: Home) -> Path:
        """Sync state of this source (delta links, hash caches, the OneDrive login record)."""
        return home.dir("state", "source", self.kind)

    def onedrive_settings(self):
        from facecraft_pipeline.sources.onedrive import OneDriveSettings

        return OneDriveSettings(
            client_id=self.onedrive_client_id,
            tenant=self.onedrive_tenant,
            folder=self.folder or "/Pictures",
            recursive=self.recursive,
            suffixes=self.suffixes,
            max_file_mb=self.max_file_mb,
            max_concurrency=self.onedrive_max_concurrency,
            graph_base_url=self.onedrive_graph_url,
        )

    def build(self, home: Home) -> PhotoSource:
        state = self.state_dir(home)
        if self.kind == "demo":
            from facecraft_pipeline.sources.demo_album import DemoAlbumSource

            return DemoAlbumSource(home.dir("photos", "demo-album"), state_dir=state)
        if self.kind == "local":
            from facecraft_pipeline.sources.local import LocalFolderSource

            if not self.folder:
                raise dg.Failure("photo source 'local' needs a folder: set FACECRAFT_PHOTOS_DIR or the resource's `folder`")
            suffixes = tuple(s.strip().lower() for s in self.suffixes.split(",") if s.strip())
            return LocalFolderSource(
                Path(self.folder).expanduser(), state_dir=state, suffixes=suffixes, recursive=self.recursive, max_file_mb=self.max_file_mb
            )
        if self.kind == "onedrive":
            from facecraft_pipeline.sources.onedrive import OneDriveSource

            return OneDriveSource(self.onedrive_settings(), mirror_dir=home.dir("photos", "onedrive"), state_dir=state)
        raise dg.Failure(f"unknown photo source {self.kind!r}: use demo, local or onedrive")

    def reference_photos(self, home: Home) -> list[Path]:
        """The demo album's owner reference photos (other sources name theirs in asset config)."""
        if self.kind != "demo":
            return []
        from facecraft_pipeline.sources.demo_album import demo_reference_photos

        return demo_reference_photos(home.dir("photos", "demo-reference"))
