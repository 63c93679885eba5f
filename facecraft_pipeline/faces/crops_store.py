"""The face-crops manifest kept in SQLite (`faces/crops.sqlite`): a run writes the photos it touched.

One row per photo (its outcome and its share of the digest) and one per detected face (as the JSON
of the version-1 manifest, crop paths relative to the store's folder). `apply` replaces the rows
of the photos a run computed and drops those that left the library, in one transaction, and moves
the digest sum by exactly their terms, so the data version never needs a pass over the library.
A new settings key (`reset`) empties the tables: every photo is then read again from the per-photo
cache. Counts and reasons are SQL aggregates.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facecraft_pipeline.faces.crops_records import (FaceRecord, PhotoOutcome, digest_salt, face_from_json, face_term,
                                                    face_to_json, photo_term)
from facecraft_pipeline.sqlite_store import AdditiveDigest, open_store, transaction

SCHEMA_VERSION = 1
STORE_NAME = "crops.sqlite"
_PHOTO_COLUMNS = "photo_id, photo_sha256, path, status, reason, detail, width, height, faces, kept, from_cache"


def _create(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    conn.execute(f"CREATE TABLE photos ({_PHOTO_COLUMNS}, written_run INTEGER, term TEXT, PRIMARY KEY (photo_id)) WITHOUT ROWID")
    conn.execute("CREATE TABLE faces (photo_id TEXT, idx INTEGER, kept INTEGER, reason TEXT, record TEXT, PRIMARY KEY (photo_id, idx)) WITHOUT ROWID")


@dataclass(frozen=True)
class StoreSummary:
    """What a handle carries: enough to name, count and describe the manifest without reading its rows."""

    settings_key: str
    crop_size: int
    detector: str
    settings: dict[str, Any]
    digest: str
    counts: dict[str, int]
    reasons: dict[str, int]


class CropsStore:
    """The manifest rows of one data root's face crops."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.base = self.path.parent.resolve()

    def _connect(self) -> sqlite3.Connection:
        return open_store(self.path, SCHEMA_VERSION, _create)

    def meta(self) -> dict[str, str]:
        conn = self._connect()
        try:
            return dict(conn.execute("SELECT key, value FROM meta").fetchall())
        finally:
            conn.close()

    def listed(self) -> dict[str, tuple[str, str]]:
        """photo id -> (photo sha256, path) of every photo in the manifest."""
        conn = self._connect()
        try:
            return {pid: (sha, path) for pid, sha, path in conn.execute("SELECT photo_id, photo_sha256, path FROM photos")}
        finally:
            conn.close()

    def kept_crops(self) -> dict[str, list[str]]:
        """photo id -> the file names of its kept crops (to notice a crop deleted by hand)."""
        conn = self._connect()
        try:
            out: dict[str, list[str]] = {}
            for photo_id, record in conn.execute("SELECT photo_id, record FROM faces WHERE kept=1"):
                crop = json.loads(record)["crop_path"]
                if crop:
                    out.setdefault(photo_id, []).append(crop)
            return out
        finally:
            conn.close()

    def apply(
        self,
        header: dict[str, Any],
        photos: Sequence[PhotoOutcome],
        faces: Sequence[FaceRecord],
        removed: Sequence[str],
        reset: bool = False,
        extra_meta: dict[str, str] | None = None,
    ) -> StoreSummary:
        """Write `photos` (with their `faces`) over their old rows and drop `removed`, in one transaction.

        `header`: settings_key, crop_size, detector, settings. `reset`: start from empty tables.
        """
        conn = self._connect()
        try:
            with transaction(conn):
                if reset:
                    conn.execute("DELETE FROM photos")
                    conn.execute("DELETE FROM faces")
                    conn.execute("DELETE FROM meta WHERE key='digest_sum'")
                meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
                digest = AdditiveDigest.from_hex(meta.get("digest_sum"))
                run = int(meta.get("run", "0")) + 1
                faces_of: dict[str, list[FaceRecord]] = {}
                for face in faces:
                    faces_of.setdefault(face.photo_id, []).append(face)
                ids = [p.photo_id for p in photos] + list(removed)
                if len(ids) > 1000:  # many: one scan beats a lookup each
                    terms = dict(conn.execute("SELECT photo_id, term FROM photos").fetchall())
                    old_terms = [terms[i] for i in ids if i in terms]
                else:
                    old_terms = [row[0] for i in ids if (row := conn.execute("SELECT term FROM photos WHERE photo_id=?", (i,)).fetchone())]
                for term_hex in old_terms:
                    digest.remove(int(term_hex, 16))
                conn.executemany("DELETE FROM photos WHERE photo_id=?", ((i,) for i in ids))
                conn.executemany("DELETE FROM faces WHERE photo_id=?", ((i,) for i in ids))
                rows, face_rows = [], []
                for photo in photos:
                    term = AdditiveDigest(photo_term(photo))
                    for face in faces_of.get(photo.photo_id, []):
                        term.add(face_term(face))
                        face_rows.append((face.photo_id, face.index, int(face.kept), face.reason, json.dumps(face_to_json(face, self.base))))
                    digest.add(term.total)
                    rows.append((*_photo_values(photo), run, term.hex()))
                conn.executemany(f"INSERT INTO photos VALUES ({', '.join('?' * 13)})", rows)
                conn.executemany("INSERT INTO faces VALUES (?,?,?,?,?)", face_rows)
                values = {**{k: json.dumps(v) for k, v in header.items()}, "digest_sum": digest.hex(), "run": str(run), **(extra_meta or {})}
                conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", values.items())
            return self._summary(conn)
        finally:
            conn.close()

    def summary(self) -> StoreSummary:
        conn = self._connect()
        try:
            return self._summary(conn)
        finally:
            conn.close()

    def _summary(self, conn: sqlite3.Connection) -> StoreSummary:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        run = int(meta.get("run", "0"))
        counts = {"photos": 0, "processed": 0, "skipped": 0, "failed": 0}
        for status, number in conn.execute("SELECT status, count(*) FROM photos GROUP BY status"):
            counts[status] = number
            counts["photos"] += number
        counts["faces"], counts["kept"] = conn.execute("SELECT count(*), coalesce(sum(kept), 0) FROM faces").fetchone()
        computed = conn.execute("SELECT count(*) FROM photos WHERE written_run=? AND from_cache=0", (run,)).fetchone()[0]
        counts["from_cache"], counts["computed"] = counts["photos"] - computed, computed
        reasons: dict[str, int] = {}
        for table in ("photos", "faces"):
            for reason, number in conn.execute(f"SELECT reason, count(*) FROM {table} WHERE reason != '' GROUP BY reason"):
                reasons[reason] = reasons.get(reason, 0) + number
        settings_key = json.loads(meta.get("settings_key", '""'))
        return StoreSummary(
            settings_key=settings_key,
            crop_size=json.loads(meta.get("crop_size", "0")),
            detector=json.loads(meta.get("detector", '""')),
            settings=json.loads(meta.get("settings", "{}")),
            digest=AdditiveDigest.from_hex(meta.get("digest_sum")).hexdigest(digest_salt(settings_key)),
            counts=counts,
            reasons=dict(sorted(reasons.items())),
        )

    def photos(self) -> tuple[PhotoOutcome, ...]:
        """Every photo's outcome, by photo id; `from_cache` is True for rows the last run did not compute."""
        conn = self._connect()
        try:
            run = int(dict(conn.execute("SELECT key, value FROM meta").fetchall()).get("run", "0"))
            rows = conn.execute(f"SELECT {_PHOTO_COLUMNS}, written_run FROM photos ORDER BY photo_id").fetchall()
        finally:
            conn.close()
        return tuple(PhotoOutcome(*row[:10], from_cache=bool(row[10]) or row[11] != run) for row in rows)

    def processed_photos(self) -> dict[str, tuple[str, tuple[tuple[float, ...], ...]]]:
        """`CropsManifest.processed_photos` from the rows: photo sha256 -> (path, the box of every face detected in it).
        Only the boxes are read out of the face records (SQLite's json_extract), nothing else is decoded."""
        conn = self._connect()
        try:
            boxes: dict[str, list[tuple[float, ...]]] = {}
            for sha, box in conn.execute("SELECT p.photo_sha256, json_extract(f.record, '$.box') FROM faces f JOIN photos p "
                                         "USING (photo_id) ORDER BY f.photo_id, f.idx"):
                boxes.setdefault(sha, []).append(tuple(float(v) for v in json.loads(box)))
            rows = conn.execute("SELECT photo_sha256, path FROM photos WHERE status='processed' AND path != '' ORDER BY photo_id").fetchall()
        finally:
            conn.close()
        return {sha: (path, tuple(boxes.get(sha, ()))) for sha, path in rows}

    def faces(self, kept_only: bool = False) -> tuple[FaceRecord, ...]:
        conn = self._connect()
        try:
            where = " WHERE kept=1" if kept_only else ""
            rows = conn.execute(f"SELECT record FROM faces{where} ORDER BY photo_id, idx").fetchall()
        finally:
            conn.close()
        return tuple(face_from_json(json.loads(record), self.base) for (record,) in rows)


def _photo_values(photo: PhotoOutcome) -> tuple:
    """The row's values in `_PHOTO_COLUMNS` order (dataclasses.astuple deep-copies: 10x slower)."""
    return (photo.photo_id, photo.photo_sha256, photo.path, photo.status, photo.reason, photo.detail, photo.width,
            photo.height, photo.faces, photo.kept, photo.from_cache)
