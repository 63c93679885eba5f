"""One SQLite file per kind of bookkeeping (photo listing, face outcomes): writes that grow with the change.

Why SQLite (WAL): a run changes a handful of rows of a 100k-row listing; a transaction writes
just those, a killed run leaves the last committed state (never a torn file), readers see a
consistent snapshot while a writer works, and `sqlite3` ships with Python
(benchmarks/results/library_scale.md has the measurement against Parquet segments).

Each store carries its schema version in `PRAGMA user_version`: 0 is a new file (the caller
creates its tables, migrating any JSON of before), a newer version than this code knows is
refused in one sentence. `library_lock` keeps two runs from writing one data root's stores at once.
`AdditiveDigest` is a content digest kept up to date row by row: the sum (mod 2^256) of each
row's sha256, so adding or removing one row costs one hash, not a pass over the library.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

_MOD = 1 << 256
# A folder whose mtime is this recent may still change within the same tick of its clock: bookkeeping
# that trusts an unchanged mtime (the folder poll, the crop check) looks at such a folder again next time.
RACY_MTIME_NS = 2_000_000_000


class StoreError(RuntimeError):
    """A store this code cannot use (newer schema, not a database, held by another run)."""


def open_store(path: Path, version: int, create: Callable[[sqlite3.Connection], None]) -> sqlite3.Connection:
    """The store at `path` in WAL mode; `create(conn)` runs (in one transaction) when its tables are missing.

    A store from before this code's schema (`user_version` lower) is rebuilt by `create` too: the
    stores hold bookkeeping that can be recomputed, so a rebuild loses time, never photos.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        found = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as error:
        raise StoreError(f"{path} is not a FaceCraft store ({error}): move it away and the next run rebuilds it") from error
    if found > version:
        conn.close()
        raise StoreError(f"{path} was written by a newer FaceCraft (schema {found}, this one knows {version}): upgrade FaceCraft")
    conn.execute("PRAGMA synchronous=NORMAL")
    if found < version:
        with transaction(conn):
            for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall():
                conn.execute(f'DROP TABLE "{name}"')
            create(conn)
            conn.execute(f"PRAGMA user_version={int(version)}")
    os.chmod(path, 0o600)
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error (a killed process: SQLite rolls it back)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@contextmanager
def library_lock(folder: Path, what: str, wait_s: float = 10.0) -> Iterator[None]:
    """Hold the data root's library lock (an flock, released by the OS if the process dies).

    Waits up to `wait_s` for a run that is finishing, then raises one sentence naming the holder.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "library.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
                    raise StoreError(f"another run is updating the photo library in {folder} ({holder}); "
                                     f"wait for it to finish, then run {what} again") from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{what}, pid {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock


class AdditiveDigest:
    """Order-independent digest of a multiset of lines, updated one line at a time."""

    def __init__(self, total: int = 0) -> None:
        self.total = total % _MOD

    @staticmethod
    def term(line: str) -> int:
        return int.from_bytes(hashlib.sha256(line.encode()).digest(), "big")

    def add(self, term: int) -> None:
        self.total = (self.total + term) % _MOD

    def remove(self, term: int) -> None:
        self.total = (self.total - term) % _MOD

    def hexdigest(self, salt: str = "") -> str:
        """sha256 of the salt and the sum: the data version (the bare sum would reveal the line hashes)."""
        return hashlib.sha256(f"{salt}\n{self.total:064x}".encode()).hexdigest()

    def hex(self) -> str:
        return f"{self.total:064x}"

    @classmethod
    def from_hex(cls, text: str | None) -> AdditiveDigest:
        return cls(int(text, 16) if text else 0)
