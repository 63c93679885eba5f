"""What a local-folder sync remembers between runs: per file its size, mtime and content hash.

Remembering (size, mtime_ns) -> sha256 lets a re-sync of a large library hash only the files that
were touched, and the previous listing is what added/changed/removed are computed against.
Written atomically so that a crash mid-write leaves the previous state, never a torn file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from facecraft_pipeline.atomic import write_json_atomic
from facecraft_pipeline.sources.base import PhotoStatus

STATE_VERSION = 1


@dataclass(frozen=True)
class CachedEntry:
    """One file as the last sync saw it."""

    size: int
    mtime_ns: int
    sha256: str | None
    status: PhotoStatus
    reason: str = ""


def load_entries(path: Path, folder: Path) -> tuple[dict[str, CachedEntry], str]:
    """The entries saved for `folder`, and a note when a state file existed but could not be used."""
    if not path.exists():
        return {}, ""
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        if payload.get("version") != STATE_VERSION or payload.get("folder") != str(folder):
            return {}, f"sync state {path} is for another folder or version; starting afresh"
        return {key: CachedEntry(**value) for key, value in payload["entries"].items()}, ""
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as error:
        return {}, f"sync state {path} unreadable ({error}); every file is hashed again"


def save_entries(path: Path, folder: Path, entries: dict[str, CachedEntry]) -> None:
    """Replace the saved state for `folder` with `entries`."""
    payload = {
        "version": STATE_VERSION,
        "folder": str(folder),
        "entries": {key: asdict(entries[key]) for key in sorted(entries)},
    }
    write_json_atomic(path, payload, 0o600, fsync=True)
