"""What a local-folder source remembers between runs, in one SQLite store per folder.

`files`: per file its size, mtime and content hash, so a re-sync of a large library hashes only
the files that were touched; the previous listing is what added/changed/removed are computed
against. Only changed rows are written, in one transaction (a killed sync leaves the last one).
`poll_dirs`: per folder its mtime and a digest of its image files' (name, inode), so a poll
re-lists only the folders that changed. The JSON state of before is imported on first use; a
store that cannot be read is moved aside and rebuilt (every file is hashed again), with a note.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from facecraft_pipeline.sources.base import PhotoStatus
from facecraft_pipeline.sqlite_store import StoreError, open_store, transaction

STATE_VERSION = 1  # of the JSON state of before (still read, once, to migrate)
SCHEMA_VERSION = 2


class CachedEntry(NamedTuple):
    """One file as the last sync saw it (a tuple: 100k of them load in a fraction of a second)."""

    size: int
    mtime_ns: int
    sha256: str | None
    status: PhotoStatus
    reason: str = ""


@dataclass(frozen=True)
class PolledDir:
    """One folder as the last poll saw it: mtime (-1: look again), image files digest, accepted sub-folders."""

    mtime_ns: int
    digest: str
    images: int
    subdirs: tuple[str, ...]


def _create(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    conn.execute("CREATE TABLE files (rel TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, sha256 TEXT, status TEXT, reason TEXT)")
    conn.execute("CREATE TABLE poll_dirs (rel TEXT PRIMARY KEY, mtime_ns INTEGER, digest TEXT, images INTEGER, subdirs TEXT)")


class LocalState:
    """The state store of one photo folder; `notes` says what was recovered from."""

    def __init__(self, path: Path, folder: Path) -> None:
        self.path, self.folder = Path(path), Path(folder)
        self.notes: list[str] = []
        fresh = not self.path.exists()
        try:
            self.conn = open_store(self.path, SCHEMA_VERSION, _create)
        except StoreError as error:
            broken = self.path.with_name(self.path.name + ".unreadable")
            self.path.replace(broken)
            for suffix in ("-wal", "-shm"):
                self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)
            self.notes.append(f"sync state {self.path} unreadable ({error}); moved to {broken.name}, every file is hashed again")
            self.conn = open_store(self.path, SCHEMA_VERSION, _create)
        stored = self.conn.execute("SELECT value FROM meta WHERE key='folder'").fetchone()
        if stored is not None and stored[0] != str(self.folder):
            self.notes.append(f"sync state {self.path} is for another folder; starting afresh")
            with transaction(self.conn):
                self.conn.execute("DELETE FROM files")
                self.conn.execute("DELETE FROM poll_dirs")
        if stored is None or stored[0] != str(self.folder):
            with transaction(self.conn):
                self.conn.execute("INSERT OR REPLACE INTO meta VALUES ('folder', ?)", (str(self.folder),))
                if fresh:
                    self._migrate_json()

    def close(self) -> None:
        self.conn.close()

    def entries(self) -> dict[str, CachedEntry]:
        rows = self.conn.execute("SELECT rel, size, mtime_ns, sha256, status, reason FROM files")
        make = CachedEntry._make
        return {row[0]: make(row[1:]) for row in rows}

    def apply(self, upserts: dict[str, CachedEntry], removed: list[str]) -> None:
        """Write the entries that changed and drop the files that went, in one transaction."""
        if not upserts and not removed:
            return
        with transaction(self.conn):
            self.conn.executemany("DELETE FROM files WHERE rel=?", ((rel,) for rel in removed))
            self.conn.executemany("INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?)", ((rel, *entry) for rel, entry in upserts.items()))

    def polled_dirs(self) -> dict[str, PolledDir]:
        rows = self.conn.execute("SELECT rel, mtime_ns, digest, images, subdirs FROM poll_dirs")
        return {rel: PolledDir(mtime, digest, images, tuple(json.loads(subdirs))) for rel, mtime, digest, images, subdirs in rows}

    def save_polled_dirs(self, before: dict[str, PolledDir], now: dict[str, PolledDir]) -> None:
        changed = [(rel, d.mtime_ns, d.digest, d.images, json.dumps(d.subdirs)) for rel, d in now.items() if before.get(rel) != d]
        gone = [(rel,) for rel in before if rel not in now]
        if changed or gone:
            with transaction(self.conn):
                self.conn.executemany("DELETE FROM poll_dirs WHERE rel=?", gone)
                self.conn.executemany("INSERT OR REPLACE INTO poll_dirs VALUES (?,?,?,?,?)", changed)

    def _migrate_json(self) -> None:
        """Import the JSON state file of before (same name, .json) if it is for this folder."""
        legacy = self.path.with_suffix(".json")
        try:
            payload = json.loads(legacy.read_text(encoding="utf-8"))
            if payload.get("version") != STATE_VERSION or payload.get("folder") != str(self.folder):
                return
            rows = [(rel, *CachedEntry(**value)) for rel, value in payload["entries"].items()]
        except FileNotFoundError:
            return
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as error:
            self.notes.append(f"old sync state {legacy} unreadable ({error}); every file is hashed again")
            return
        self.conn.executemany("INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?)", rows)
        self.notes.append(f"imported the sync state of {len(rows)} files from {legacy.name}")
