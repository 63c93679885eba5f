"""The photo library as one versioned listing: what the `photos` stage hands downstream.

`PhotoManifest` is the listing in memory. `PhotoStore` keeps it in SQLite in the data root and
writes only the rows a sync changed; its digest is kept up to date row by row (`AdditiveDigest`),
so an unchanged library costs one comparison per record and no rewrite. `StoredPhotoManifest` is
the handle that passes between assets (store path, counts, digest: a few hundred bytes pickled);
its records are read from the store only when someone asks for them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from facecraft_pipeline.atomic import write_json_atomic
from facecraft_pipeline.sources.base import IncrementalPhotoSource, PhotoRecord, PhotoSource, SyncChanges, SyncReport
from facecraft_pipeline.sqlite_store import AdditiveDigest, open_store, transaction

SCHEMA_VERSION = 1
STORE_NAME = "library.sqlite"  # in the data root's photos/ folder
_SALT = "photos-1"
_COLUMNS = ("source_id", "name", "path", "size", "sha256", "status", "reason", "modified", "verified")


def _usable(record: PhotoRecord) -> bool:
    return record.status == "ok" and record.path is not None and bool(record.sha256)


def _term(record: PhotoRecord) -> int:
    """What one record adds to the digest: only usable photos count, by (id, content)."""
    return AdditiveDigest.term(f"{record.source_id}\0{record.sha256}") if _usable(record) else 0


@dataclass(frozen=True)
class PhotoManifest:
    """Every item of the source after a sync; `digest` changes exactly when the usable photos do."""

    source: str
    records: tuple[PhotoRecord, ...]
    digest: str

    @property
    def usable(self) -> tuple[PhotoRecord, ...]:
        return tuple(r for r in self.records if _usable(r))

    def usable_rows(self) -> list[tuple[str, str, str]]:
        """(source id, local path, sha256) of each usable photo: no object per photo (100k rows in ~0.1 s)."""
        return [(r.source_id, str(r.path), r.sha256) for r in self.usable]  # type: ignore[misc]

    def counts(self) -> dict[str, int]:
        """Records per status, plus `unverified`: fetched photos kept without a hash to check them by."""
        return _counts(self.records)

    def write_json(self, path: Path) -> Path:
        write_json_atomic(path, {"source": self.source, "digest": self.digest, "photos": [_to_json(r) for r in self.records]})
        return path


def _counts(records: tuple[PhotoRecord, ...] | list[PhotoRecord]) -> dict[str, int]:
    counts = {"total": len(records), "ok": 0, "skipped": 0, "failed": 0, "unverified": 0}
    for record in records:
        counts[record.status] += 1
        counts["unverified"] += record.status == "ok" and record.verified is False
    return counts


def _to_json(record: PhotoRecord) -> dict[str, Any]:
    return {**asdict(record), "path": str(record.path) if record.path else None}


def manifest_from_report(report: SyncReport) -> PhotoManifest:
    records = tuple(sorted(report.photos, key=lambda r: r.source_id))
    digest = AdditiveDigest()
    for record in records:
        digest.add(_term(record))
    return PhotoManifest(source=report.source, records=records, digest=digest.hexdigest(_SALT))


class StoredPhotoManifest(PhotoManifest):
    """A `PhotoManifest` whose records stay in the store until read; pickles as its handle."""

    def __init__(self, store: Path, source: str, digest: str, counts: dict[str, int]) -> None:
        object.__setattr__(self, "store", Path(store))
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "digest", digest)
        object.__setattr__(self, "_counts", dict(counts))

    def __getattr__(self, name: str) -> Any:
        if name == "records":  # first read: load once
            records = PhotoStore(self.store).records()
            object.__setattr__(self, "records", records)
            return records
        raise AttributeError(name)

    def __reduce__(self) -> tuple:
        return (StoredPhotoManifest, (self.store, self.source, self.digest, self._counts))

    def __repr__(self) -> str:
        return f"StoredPhotoManifest({self.store}, {self._counts['ok']} ok of {self._counts['total']}, digest {self.digest[:12]})"

    @property
    def usable(self) -> tuple[PhotoRecord, ...]:
        return PhotoStore(self.store).records(usable_only=True)

    def usable_rows(self) -> list[tuple[str, str, str]]:
        return PhotoStore(self.store).usable_rows()

    def counts(self) -> dict[str, int]:
        return dict(self._counts)


@dataclass
class StoreUpdate:
    """What `PhotoStore.update` changed."""

    manifest: StoredPhotoManifest
    written: int = 0
    deleted: int = 0
    notes: list[str] = field(default_factory=list)


def _create(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    conn.execute(f"CREATE TABLE photos ({', '.join(_COLUMNS)}, PRIMARY KEY (source_id)) WITHOUT ROWID")


class PhotoStore:
    """The photo listing in `path` (SQLite): one row per source item, plus the digest sum and counts."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _connect(self) -> sqlite3.Connection:
        return open_store(self.path, SCHEMA_VERSION, _create)

    def update(self, report: SyncReport) -> StoreUpdate:
        """Make the store equal the report's listing, writing only the rows that differ; one transaction."""
        conn = self._connect()
        try:
            old = {row[0]: row for row in conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM photos")}
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            digest = AdditiveDigest()  # the full listing is at hand: summed afresh, whatever the store held
            notes = []
            if meta.get("source") not in (None, report.source):
                notes.append(f"the source changed from {meta['source']} to {report.source}: its listing replaces the old one")
            seen: set[str] = set()
            writes = []
            for record in report.photos:
                row = _row(record)
                seen.add(record.source_id)
                digest.add(_term(record))
                if old.get(record.source_id) != row:
                    writes.append(row)
            gone = [source_id for source_id in old if source_id not in seen]
            with transaction(conn):
                counts = self._write(conn, gone, writes, report.source, digest)
        finally:
            conn.close()
        manifest = StoredPhotoManifest(self.path, report.source, digest.hexdigest(_SALT), counts)
        return StoreUpdate(manifest, len(writes), len(gone), notes)

    def _write(self, conn: sqlite3.Connection, gone: Sequence[str], rows: list[tuple], source: str, digest: AdditiveDigest) -> dict[str, int]:
        """Delete `gone`, write `rows`, and record the source, digest sum and counts (inside the caller's transaction)."""
        conn.executemany("DELETE FROM photos WHERE source_id=?", ((s,) for s in gone))
        conn.executemany(f"INSERT OR REPLACE INTO photos VALUES ({', '.join('?' * len(_COLUMNS))})", rows)
        counts = self._sql_counts(conn)
        conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                         [("source", source), ("digest_sum", digest.hex()), ("counts", json.dumps(counts))])
        return counts

    def apply_changes(self, changes: SyncChanges) -> StoreUpdate:
        """Write what an incremental sync says changed (rows of unchanged items are not even read)."""
        conn = self._connect()
        try:
            with transaction(conn):
                meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
                digest = AdditiveDigest.from_hex(meta.get("digest_sum"))
                notes = []
                if meta.get("source") not in (None, changes.source):
                    notes.append(f"the source changed from {meta['source']} to {changes.source}: its listing replaces the old one")
                    conn.execute("DELETE FROM photos")
                    digest = AdditiveDigest()
                ids = [r.source_id for r in changes.upserts] + list(changes.gone)
                select = f"SELECT {', '.join(_COLUMNS)} FROM photos WHERE source_id=?"
                for source_id in ids:
                    if (row := conn.execute(select, (source_id,)).fetchone()) is not None:
                        digest.remove(_term(_record(row)))
                for record in changes.upserts:
                    digest.add(_term(record))
                counts = self._write(conn, changes.gone, [_row(r) for r in changes.upserts], changes.source, digest)
        finally:
            conn.close()
        manifest = StoredPhotoManifest(self.path, changes.source, digest.hexdigest(_SALT), counts)
        return StoreUpdate(manifest, len(changes.upserts), len(changes.gone), notes)

    def holds(self, source: str) -> bool:
        """Whether the store already holds a listing of `source` (else a sync must be compared in full)."""
        if not self.path.is_file():
            return False
        conn = self._connect()
        try:
            row = conn.execute("SELECT value FROM meta WHERE key='source'").fetchone()
        finally:
            conn.close()
        return row is not None and row[0] == source

    def problems(self, limit: int) -> tuple[int, list[PhotoRecord]]:
        """How many items are not "ok", and the first `limit` of them."""
        conn = self._connect()
        try:
            total = conn.execute("SELECT count(*) FROM photos WHERE status != 'ok'").fetchone()[0]
            rows = conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM photos WHERE status != 'ok' ORDER BY source_id LIMIT ?", (limit,)).fetchall()
        finally:
            conn.close()
        return total, [_record(row) for row in rows]

    def manifest(self) -> StoredPhotoManifest:
        """The handle of what the store holds now."""
        conn = self._connect()
        try:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        finally:
            conn.close()
        counts = json.loads(meta["counts"]) if "counts" in meta else _counts([])
        return StoredPhotoManifest(self.path, meta.get("source", ""), AdditiveDigest.from_hex(meta.get("digest_sum")).hexdigest(_SALT), counts)

    def records(self, usable_only: bool = False) -> tuple[PhotoRecord, ...]:
        return tuple(_record(row) for row in self._select(", ".join(_COLUMNS), usable_only))

    def usable_rows(self) -> list[tuple[str, str, str]]:
        return self._select("source_id, path, sha256", usable_only=True)

    def _select(self, columns: str, usable_only: bool) -> list[tuple]:
        where = " WHERE status='ok' AND path IS NOT NULL AND sha256 IS NOT NULL AND sha256 != ''" if usable_only else ""
        conn = self._connect()
        try:
            return conn.execute(f"SELECT {columns} FROM photos{where} ORDER BY source_id").fetchall()
        finally:
            conn.close()

    @staticmethod
    def _sql_counts(conn: sqlite3.Connection) -> dict[str, int]:
        counts = {"total": 0, "ok": 0, "skipped": 0, "failed": 0, "unverified": 0}
        for status, number in conn.execute("SELECT status, count(*) FROM photos GROUP BY status"):
            counts[status] = number
            counts["total"] += number
        counts["unverified"] = conn.execute("SELECT count(*) FROM photos WHERE status='ok' AND verified=0").fetchone()[0]
        return counts


def _row(record: PhotoRecord) -> tuple:
    verified = None if record.verified is None else int(record.verified)
    return (record.source_id, record.name, str(record.path) if record.path else None, record.size, record.sha256,
            record.status, record.reason, record.modified, verified)


def _record(row: tuple) -> PhotoRecord:
    source_id, name, path, size, sha256, status, reason, modified, verified = row
    return PhotoRecord(source_id, name, Path(path) if path else None, size, sha256, status, reason, modified,
                       None if verified is None else bool(verified))


def sync_into(source: PhotoSource, store: PhotoStore) -> tuple[SyncReport | SyncChanges, StoreUpdate]:
    """Sync `source` into `store`: by changes only when the source can and the store is in step, else in full.

    In step means the store holds this source's listing and, after the changes, as many items as
    the source listed; otherwise (a new or replaced store, an old data root) the full listing is
    compared, which is always right.
    """
    if isinstance(source, IncrementalPhotoSource) and store.holds(source.description):
        told: list[SyncChanges] = []

        def publish(changes: SyncChanges) -> StoreUpdate:
            told.append(changes)
            return store.apply_changes(changes)

        update = source.sync_changes(publish)
        if update.manifest.counts()["total"] == told[0].listed:
            return told[0], update
        note = "the photo store was out of step with the source's sync state: compared in full"
    else:
        note = ""
    report = source.sync()
    update = store.update(report)
    if note:
        update.notes.append(note)
    return report, update
