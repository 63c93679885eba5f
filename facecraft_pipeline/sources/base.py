"""What every photo source promises: an incremental sync into local files, and a cheap change check.

A source (local folder, demo album, OneDrive) mirrors its photos as local files and reports every
item it knows of, including the ones it could not fetch, so that no input is silently lost.
No Dagster here: a source can be used from a notebook.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable
from typing import Literal, Protocol, TypeVar, runtime_checkable

from facecraft_pipeline.digest import sha256_file  # noqa: F401 (one file digest for the whole project)

PhotoStatus = Literal["ok", "skipped", "failed"]
T = TypeVar("T")

# Image types a source takes by default (lower-case suffixes). An animated GIF counts as its first frame.
IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".heic", ".heif", ".webp", ".bmp", ".tif", ".tiff", ".gif")


def parse_suffixes(text: str) -> tuple[str, ...]:
    """".JPG, png ,.heic" -> (".jpg", ".png", ".heic"): lower case, leading dot, no blanks or repeats."""
    out: list[str] = []
    for part in text.split(","):
        word = part.strip().lower()
        if word:
            word = word if word.startswith(".") else f".{word}"
            if word not in out:
                out.append(word)
    return tuple(out)


def unsupported_reason(name: str) -> str:
    """Why a file of a type the source does not take is listed as skipped."""
    suffix = Path(name).suffix.lower()
    return f"unsupported type: {suffix}" if suffix else "unsupported type: no file extension"


@dataclass(frozen=True)
class PhotoRecord:
    """One item of the source as it stands after a sync.

    `source_id` is stable within the source (relative path, OneDrive item id); `path` is the local
    file (None when it could not be fetched); `sha256` is of the local file's bytes. `status` is
    "ok", or "skipped"/"failed" with a human-readable `reason`. `verified` tells whether a fetched
    file was checked against a hash the remote gave (False: it gave none, so only the size could
    be checked; None: nothing was fetched, e.g. a local folder, whose files are the originals).
    """

    source_id: str
    name: str
    path: Path | None
    size: int
    sha256: str | None
    status: PhotoStatus = "ok"
    reason: str = ""
    modified: str | None = None  # ISO-8601 time the source gives, if any
    verified: bool | None = None


@dataclass(frozen=True)
class SyncReport:
    """The full current listing after a sync, plus what changed in this sync."""

    source: str  # human-readable description, e.g. "local:/home/me/Pictures"
    photos: tuple[PhotoRecord, ...]
    added: tuple[str, ...] = ()  # source ids new in this sync
    changed: tuple[str, ...] = ()  # source ids whose content changed
    removed: tuple[str, ...] = ()  # source ids that disappeared since the last sync
    notes: tuple[str, ...] = field(default=())  # anything a person should read (e.g. "full resync after 410")

    @property
    def ok(self) -> tuple[PhotoRecord, ...]:
        return tuple(p for p in self.photos if p.status == "ok")


@dataclass(frozen=True)
class SyncChanges:
    """A sync told as changes: the records that differ from the last sync's, and the ids that left.

    What an incremental source (`sync_changes`) gives the photo store, so that an unchanged item
    costs a comparison, not an object. `gone` holds every id no longer listed (photos or not);
    `added`/`changed`/`removed` count photos only, as in `SyncReport`.
    """

    source: str
    upserts: tuple[PhotoRecord, ...]
    gone: tuple[str, ...]
    listed: int  # items listed in all: the store checks it holds as many
    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChangeCheck:
    """Answer of a cheap poll: did anything change since `cursor`? Used by sensors."""

    changed: bool
    cursor: str
    summary: str = ""


class PhotoSource(Protocol):
    """A place photos come from."""

    description: str

    def sync(self) -> SyncReport:
        """Bring the local mirror up to date and list every item (fetched or not)."""
        ...

    def check_for_changes(self, cursor: str | None) -> ChangeCheck:
        """Cheaply tell whether anything changed since `cursor` (None: first poll), without downloading."""
        ...


@runtime_checkable
class IncrementalPhotoSource(PhotoSource, Protocol):
    """A source that can also tell a sync as changes only (the local folder: 100k unchanged files, no record built)."""

    def sync_changes(self, publish: Callable[[SyncChanges], T]) -> T:
        """Sync, hand the changes to `publish` (e.g. `PhotoStore.apply_changes`), then save the source's state."""
        ...
