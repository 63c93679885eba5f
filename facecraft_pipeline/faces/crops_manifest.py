"""The record of a face-extraction run: every photo and every face, with what was decided and why.

Nothing is dropped silently: a photo is "processed" (faces found), "skipped" (decoded, but nothing
to use: "no-face", "too-small") or "failed" (could not be decoded: the `ImageDecodeError` code, or
"error" with the exception text). Each detected face keeps its box, landmarks, score, quality
measures and either its crop or the reason it was rejected. The digest covers content and
decisions only (photo and crop hashes, statuses, reasons), not ids, paths or cache hits, so it
changes exactly when the crops a later stage would read change: use it as the data version. It is
the sum of one hash per line (`AdditiveDigest`), so the store (`crops_store.py`) keeps it up to
date photo by photo and gets the same value as a manifest held in memory.

`faces/manifest.json` is written in one of two forms: version 1, the whole manifest (what
`write_json` writes, `facecraft manifest faces` exports); version 2, a summary that points at the
store holding the rows (what `face_crops` leaves). `read_json` reads both.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from facecraft_pipeline.atomic import write_json_atomic
from facecraft_pipeline.faces.crops_records import (FaceRecord, PhotoOutcome, PhotoStatus, digest_salt, face_from_json,
                                                    face_term, face_to_json, photo_term, relative_path)
from facecraft_pipeline.faces.crops_store import CropsStore, StoreSummary
from facecraft_pipeline.sqlite_store import AdditiveDigest

__all__ = ["CropsManifest", "FaceRecord", "PhotoOutcome", "PhotoStatus", "StoredCropsManifest"]
MANIFEST_VERSION = 1
POINTER_VERSION = 2  # manifest.json that points at the store (crops_store.py) instead of holding the rows


@dataclass(frozen=True)
class CropsManifest:
    """All photos and faces of one run, in input order, plus the settings that produced them."""

    settings_key: str
    crop_size: int
    detector: str
    photos: tuple[PhotoOutcome, ...]
    faces: tuple[FaceRecord, ...]
    settings: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def kept_faces(self) -> tuple[FaceRecord, ...]:
        return tuple(face for face in self.faces if face.kept)

    @property
    def counts(self) -> dict[str, int]:
        """photos, processed, skipped, failed, faces, kept, from_cache, computed."""
        statuses = [photo.status for photo in self.photos]
        cached = sum(photo.from_cache for photo in self.photos)
        return {
            "photos": len(self.photos),
            "processed": statuses.count("processed"),
            "skipped": statuses.count("skipped"),
            "failed": statuses.count("failed"),
            "faces": len(self.faces),
            "kept": len(self.kept_faces),
            "from_cache": cached,
            "computed": len(self.photos) - cached,
        }

    @property
    def reasons(self) -> dict[str, int]:
        """How often each skip/failure/rejection reason occurred (for metadata and asset checks)."""
        tally: dict[str, int] = {}
        for reason in [p.reason for p in self.photos if p.reason] + [f.reason for f in self.faces if f.reason]:
            tally[reason] = tally.get(reason, 0) + 1
        return dict(sorted(tally.items()))

    @property
    def digest(self) -> str:
        """A data version for the crops: the settings key and the sum of the content-and-decision line hashes."""
        total = AdditiveDigest()
        for photo in self.photos:
            total.add(photo_term(photo))
        for face in self.faces:
            total.add(face_term(face))
        return total.hexdigest(digest_salt(self.settings_key))

    def processed_photos(self) -> dict[str, tuple[str, tuple[tuple[float, ...], ...]]]:
        """photo sha256 -> (its path, the box of every face detected in it) for every processed photo with a path."""
        boxes: dict[str, list[tuple[float, ...]]] = {}
        for face in self.faces:
            boxes.setdefault(face.photo_sha256, []).append(tuple(float(v) for v in face.box))
        return {p.photo_sha256: (p.path, tuple(boxes.get(p.photo_sha256, ()))) for p in self.photos if p.path and p.status == "processed"}

    @property
    def row_count(self) -> int:
        """How many rows `to_rows` has: one per face, one per photo without faces."""
        return sum(1 for photo in self.photos if not photo.faces) + len(self.faces)

    def to_rows(self, limit: int | None = None) -> list[dict[str, Any]]:
        """One row per face, plus one per photo without faces: a table of every decision (the first `limit` rows)."""
        by_photo: dict[tuple[str, str], list[FaceRecord]] = {}
        for face in self.faces:
            by_photo.setdefault((face.photo_id, face.photo_sha256), []).append(face)
        rows: list[dict[str, Any]] = []
        for photo in self.photos:
            if limit is not None and len(rows) >= limit:
                return rows[:limit]
            base = {"photo_id": photo.photo_id, "status": photo.status, "photo_reason": photo.reason or photo.detail}
            faces = by_photo.get((photo.photo_id, photo.photo_sha256), [])
            if not faces:
                rows.append(base | {"face": None, "kept": False, "reason": photo.reason, "score": None, "face_px": None, "crop": None})
            for face in faces:
                crop = face.crop_path.name if face.crop_path else None
                rows.append(
                    base
                    | {
                        "face": face.index,
                        "kept": face.kept,
                        "reason": face.reason,
                        "score": round(face.score, 3),
                        "face_px": round(face.face_px, 1),
                        "crop": crop,
                    }
                )
        return rows

    def write_json(self, path: Path) -> None:
        """Write atomically; crop paths are stored relative to the JSON file's folder."""
        path = Path(path)
        base = path.parent.resolve()
        payload = {
            "version": MANIFEST_VERSION,
            "settings_key": self.settings_key,
            "crop_size": self.crop_size,
            "detector": self.detector,
            "settings": self.settings,
            "digest": self.digest,
            "photos": [asdict(photo) for photo in self.photos],
            "faces": [face_to_json(face, base) for face in self.faces],
        }
        write_json_atomic(path, payload)

    @classmethod
    def read_json(cls, path: Path) -> CropsManifest:
        """The manifest `write_json` wrote, crop paths made absolute again (or the store a version-2 file points at)."""
        path = Path(path)
        payload = json.loads(path.read_text())
        if payload.get("version") == POINTER_VERSION:
            return StoredCropsManifest.open(path.parent / payload["store"])
        if payload.get("version") != MANIFEST_VERSION:
            raise ValueError(f"{path}: manifest version {payload.get('version')} is not {MANIFEST_VERSION}")
        base = path.parent.resolve()
        return cls(
            settings_key=payload["settings_key"],
            crop_size=payload["crop_size"],
            detector=payload["detector"],
            photos=tuple(PhotoOutcome(**photo) for photo in payload["photos"]),
            faces=tuple(face_from_json(face, base) for face in payload["faces"]),
            settings=payload.get("settings", {}),
        )


class StoredCropsManifest(CropsManifest):
    """A `CropsManifest` whose rows stay in its store (`crops_store.py`) until read; pickles as its handle.

    Counts, reasons and the digest come with the handle; `kept_faces` reads only the kept rows,
    `processed_photos` only two columns of the photos and a count of faces.
    """

    def __init__(self, store: Path, summary: StoreSummary) -> None:
        object.__setattr__(self, "store", Path(store))
        object.__setattr__(self, "summary", summary)
        for name in ("settings_key", "crop_size", "detector", "settings"):
            object.__setattr__(self, name, getattr(summary, name))

    @classmethod
    def open(cls, store: Path) -> StoredCropsManifest:
        store = Path(store).resolve()
        if not store.is_file():
            raise FileNotFoundError(f"no face-crops store at {store}: materialize face_crops first")
        return cls(store, CropsStore(store).summary())

    def __getattr__(self, name: str) -> Any:
        if name in ("photos", "faces"):  # first read: load once
            rows = CropsStore(self.store).photos() if name == "photos" else CropsStore(self.store).faces()
            object.__setattr__(self, name, rows)
            return rows
        raise AttributeError(name)

    def __reduce__(self) -> tuple:
        return (StoredCropsManifest, (self.store, self.summary))

    def __repr__(self) -> str:
        return f"StoredCropsManifest({self.store}, {self.summary.counts}, digest {self.summary.digest[:12]})"

    @property
    def kept_faces(self) -> tuple[FaceRecord, ...]:
        if "faces" in self.__dict__:
            return super().kept_faces
        return CropsStore(self.store).faces(kept_only=True)

    def processed_photos(self) -> dict[str, tuple[str, tuple[tuple[float, ...], ...]]]:
        if "photos" in self.__dict__ and "faces" in self.__dict__:
            return super().processed_photos()
        return CropsStore(self.store).processed_photos()  # two SQL queries: no face record decoded

    @property
    def counts(self) -> dict[str, int]:
        return dict(self.summary.counts)

    @property
    def reasons(self) -> dict[str, int]:
        return dict(self.summary.reasons)

    @property
    def digest(self) -> str:
        return self.summary.digest

    def write_pointer(self, path: Path) -> None:
        """`manifest.json` version 2: the summary, and where the rows are (`read_json` follows it)."""
        path = Path(path)
        summary = self.summary
        payload = {
            "version": POINTER_VERSION,
            "store": relative_path(self.store, path.parent.resolve()),
            "settings_key": summary.settings_key,
            "crop_size": summary.crop_size,
            "detector": summary.detector,
            "settings": summary.settings,
            "digest": summary.digest,
            "counts": summary.counts,
            "reasons": summary.reasons,
            "export": "facecraft manifest faces --out FILE writes every row as a version-1 manifest",
        }
        write_json_atomic(path, payload)
