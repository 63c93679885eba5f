"""How the OneDrive source is configured: the one place its defaults live.

A frozen settings dataclass (see `facecraft_pipeline.settings`): every field once, with its help,
checked by `validate`. The Dagster resource (`resources.OneDriveResource`) derives its launchpad
config from it; environment variables (client id, tenant, folder) are applied when the
Definitions are built. Imports nothing else of the sources, so every OneDrive module may use it.
"""

from __future__ import annotations

from dataclasses import dataclass

from facecraft_pipeline.settings import setting, validate
from facecraft_pipeline.sources.base import IMAGE_SUFFIXES, parse_suffixes


@dataclass(frozen=True)
class OneDriveSettings:
    """Which OneDrive folder to mirror, and how."""

    client_id: str = setting("", "application (client) id of your Entra app registration ($FACECRAFT_ONEDRIVE_CLIENT_ID)")
    tenant: str = setting("consumers", "Entra tenant: 'consumers' for a personal Microsoft account ($FACECRAFT_ONEDRIVE_TENANT)")
    folder: str = setting("/Pictures", "OneDrive folder: a path such as /Pictures, '/' for the whole drive, or special:photos ($FACECRAFT_PHOTOS_DIR)")
    recursive: bool = setting(True, "also take the photos in sub-folders")
    suffixes: str = setting(",".join(IMAGE_SUFFIXES), "comma-separated file types to mirror (case-insensitive); other files are listed as skipped")
    max_file_mb: float = setting(200.0, "larger files (1 MB = 1,000,000 bytes) are recorded as skipped", minimum=0, exclusive=True)
    min_file_bytes: int = setting(1, "smaller files are recorded as skipped", minimum=0)
    max_concurrency: int = setting(4, "downloads at the same time", minimum=1, maximum=64)
    max_attempts: int = setting(3, "tries per photo and sync before it is recorded as failed", minimum=1, maximum=20)
    read_timeout_s: float = setting(60.0, "seconds a download may send nothing before the attempt fails", minimum=0, exclusive=True)
    download_deadline_s: float = setting(
        600.0, "seconds one download attempt may take in all, however slowly bytes trickle in", minimum=0, exclusive=True)
    graph_base_url: str = setting("https://graph.microsoft.com/v1.0", "Microsoft Graph base URL (changed only by tests) ($FACECRAFT_GRAPH_URL)")
    auth_dir: str | None = setting(None, "folder of the saved login; empty: <data root>/state/source/onedrive/onedrive_auth")

    def __post_init__(self) -> None:
        validate(self)
        if not self.suffix_set():
            raise ValueError(f"OneDriveSettings.suffixes names no file type, got {self.suffixes!r}")
        if not self.folder.strip():
            raise ValueError("OneDriveSettings.folder must be a OneDrive path ('/', '/Pictures') or special:<name>, got ''")

    def suffix_set(self) -> frozenset[str]:
        return frozenset(parse_suffixes(self.suffixes))
