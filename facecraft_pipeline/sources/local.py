"""A folder on this machine as a photo source: photos stay where they are, nothing is copied.

Each sync lists the image files (by suffix; hidden files and folders ignored), hashes only the files
whose (size, mtime_ns) changed since the last sync -- the quick check rsync makes -- and reports
added/changed/removed against the previous sync's listing. One bad file never stops a sync: it is
reported as "skipped" or "failed" with a reason. The source judges files, not pixels: a truncated
or corrupt image is listed "ok" here, and the face stage records the decoding error when it reads it.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from facecraft_pipeline.sources.base import IMAGE_SUFFIXES, ChangeCheck, PhotoRecord, SyncReport, sha256_file
from facecraft_pipeline.sources.local_state import CachedEntry, load_entries, save_entries

_MB = 1_000_000


@dataclass(frozen=True)
class _Listed:
    """A candidate file and what one stat() said about it (`error` set when stat failed)."""

    rel: str
    path: Path
    size: int
    mtime_ns: int
    regular: bool
    error: str = ""


class LocalFolderSource:
    """Photos in `folder` (and its sub-folders when `recursive`); sync state kept in `state_dir`."""

    def __init__(
        self,
        folder: Path,
        state_dir: Path,
        suffixes: tuple[str, ...] = IMAGE_SUFFIXES,
        recursive: bool = True,
        max_file_mb: float = 200.0,
    ) -> None:
        self.folder = Path(folder).expanduser().resolve()
        self.state_dir = Path(state_dir).expanduser().resolve()
        self.suffixes = tuple(s.lower() if s.startswith(".") else f".{s.lower()}" for s in suffixes)
        self.recursive = recursive
        self.max_file_mb = max_file_mb
        self.description = f"local:{self.folder}"
        # Source ids whose bytes the last sync() actually read (the rest came from the cache).
        self.last_hashed: tuple[str, ...] = ()

    @property
    def state_path(self) -> Path:
        """One state file per folder, so several sources can share a state_dir."""
        key = hashlib.sha256(str(self.folder).encode("utf-8")).hexdigest()[:16]
        return self.state_dir / f"local-{key}.json"

    def sync(self) -> SyncReport:
        """List every image file, hash the new or touched ones, and compare with the last sync."""
        listed, notes = self._list()
        previous, state_note = load_entries(self.state_path, self.folder)
        if state_note:
            notes.append(state_note)
        entries: dict[str, CachedEntry] = {}
        records: list[PhotoRecord] = []
        hashed: list[str] = []
        for item in listed:
            entry = self._judge(item, previous.get(item.rel), hashed)
            entries[item.rel] = entry
            records.append(_record(item, entry))
        save_entries(self.state_path, self.folder, entries)
        changed = [rel for rel in entries if rel in previous and _content(previous[rel]) != _content(entries[rel])]
        self.last_hashed = tuple(hashed)
        notes.append(f"read {len(hashed)} of {len(listed)} files; the others were unchanged, skipped or failed")
        return SyncReport(
            source=self.description,
            photos=tuple(records),
            added=tuple(rel for rel in entries if rel not in previous),
            changed=tuple(changed),
            removed=tuple(sorted(rel for rel in previous if rel not in entries)),
            notes=tuple(notes),
        )

    def check_for_changes(self, cursor: str | None) -> ChangeCheck:
        """Stat-only poll: the cursor is a digest of the sorted (path, size, mtime_ns) listing."""
        listed, _ = self._list()
        digest = hashlib.sha256()
        for item in listed:
            digest.update(f"{item.rel}\t{item.size}\t{item.mtime_ns}\n".encode())
        new_cursor = digest.hexdigest()
        total_mb = sum(max(item.size, 0) for item in listed) / _MB
        summary = f"{len(listed)} image files, {total_mb:.1f} MB in {self.folder}"
        return ChangeCheck(changed=new_cursor != cursor, cursor=new_cursor, summary=summary)

    def _judge(self, item: _Listed, cached: CachedEntry | None, hashed: list[str]) -> CachedEntry:
        """Status and hash of one file; reads its bytes only when the cache cannot vouch for them."""
        if item.error:
            return CachedEntry(item.size, item.mtime_ns, None, "failed", f"cannot read: {item.error}")
        if not item.regular:
            return CachedEntry(item.size, item.mtime_ns, None, "skipped", "not a regular file")
        if item.size == 0:
            return CachedEntry(item.size, item.mtime_ns, None, "skipped", "empty file")
        if item.size > self.max_file_mb * _MB:
            reason = f"{item.size / _MB:.3g} MB is over the {self.max_file_mb:g} MB limit"
            return CachedEntry(item.size, item.mtime_ns, None, "skipped", reason)
        if (
            cached is not None
            and cached.status == "ok"
            and (cached.size, cached.mtime_ns) == (item.size, item.mtime_ns)
            and os.access(item.path, os.R_OK)
        ):
            return cached
        try:
            digest = sha256_file(item.path)
        except OSError as error:
            return CachedEntry(item.size, item.mtime_ns, None, "failed", f"cannot read: {error}")
        hashed.append(item.rel)
        return CachedEntry(item.size, item.mtime_ns, digest, "ok")

    def _list(self) -> tuple[list[_Listed], list[str]]:
        """Candidate image files sorted by relative path, plus notes on folders that could not be read."""
        if not self.folder.is_dir():
            raise FileNotFoundError(f"photo folder {self.folder} does not exist or is not a folder")
        notes: list[str] = []
        found: list[_Listed] = []
        for dirpath, dirnames, filenames in os.walk(self.folder, onerror=lambda e: notes.append(f"cannot list: {e}")):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")) if self.recursive else []
            for name in filenames:
                if name.startswith(".") or os.path.splitext(name)[1].lower() not in self.suffixes:
                    continue
                path = Path(dirpath) / name
                found.append(_stat(path, path.relative_to(self.folder).as_posix()))
        found.sort(key=lambda item: item.rel)
        return found, notes


def _stat(path: Path, rel: str) -> _Listed:
    try:
        info = path.stat()
    except OSError as error:
        return _Listed(rel, path, -1, -1, regular=False, error=str(error))
    return _Listed(rel, path, info.st_size, info.st_mtime_ns, regular=stat.S_ISREG(info.st_mode))


def _content(entry: CachedEntry) -> tuple[str | None, str]:
    """What counts as a change: a different hash, or a different status (e.g. empty -> filled)."""
    return entry.sha256, entry.status


def _record(item: _Listed, entry: CachedEntry) -> PhotoRecord:
    modified = None
    if item.mtime_ns >= 0:
        modified = datetime.fromtimestamp(item.mtime_ns / 1e9, tz=UTC).isoformat()
    return PhotoRecord(
        source_id=item.rel,
        name=item.path.name,
        path=None if entry.status == "failed" else item.path,
        size=max(item.size, 0),
        sha256=entry.sha256,
        status=entry.status,
        reason=entry.reason,
        modified=modified,
    )
