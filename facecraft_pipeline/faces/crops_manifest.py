"""The record of a face-extraction run: every photo and every face, with what was decided and why.

Nothing is dropped silently: a photo is "processed" (faces found), "skipped" (decoded, but nothing
to use: "no-face", "too-small") or "failed" (could not be decoded: the `ImageDecodeError` code, or
"error" with the exception text). Each detected face keeps its box, landmarks, score, quality
measures and either its crop or the reason it was rejected. The digest covers content and
decisions only (photo and crop hashes, statuses, reasons), not ids, paths or cache hits, so it
changes exactly when the crops a later stage would read change: use it as the data version.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from facecraft_pipeline.atomic import write_json_atomic

PhotoStatus = Literal["processed", "skipped", "failed"]
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class FaceRecord:
    """One detected face. Coordinates are photo pixels after EXIF rotation; `crop_path` is set when kept."""

    photo_id: str
    photo_sha256: str
    index: int  # detector order within the photo (best score first)
    box: tuple[float, float, float, float]
    landmarks: tuple[tuple[float, float], ...]  # 5 points, ArcFace order
    score: float
    face_px: float  # photo pixels across the aligned crop: the crop is upsampled iff face_px < crop size
    sharpness: float
    yaw_ratio: float
    kept: bool
    reason: str = ""  # why rejected ("" when kept)
    crop_path: Path | None = None
    crop_sha256: str | None = None


@dataclass(frozen=True)
class PhotoOutcome:
    """What happened to one input photo."""

    photo_id: str
    photo_sha256: str
    path: str
    status: PhotoStatus
    reason: str = ""  # skipped/failed: a short code; processed: ""
    detail: str = ""  # human-readable message for failures
    width: int = 0
    height: int = 0
    faces: int = 0
    kept: int = 0
    from_cache: bool = False


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
        """sha256 over the sorted content-and-decision lines: a data version for the crops."""
        lines = [f"settings {self.settings_key}"]
        lines += sorted(f"photo {p.photo_sha256} {p.status} {p.reason}" for p in self.photos)
        lines += sorted(f"face {f.photo_sha256} {f.index} {'kept' if f.kept else 'rejected'} {f.reason} {f.crop_sha256 or '-'}" for f in self.faces)
        return hashlib.sha256("\n".join(lines).encode()).hexdigest()

    def to_rows(self) -> list[dict[str, Any]]:
        """One row per face, plus one per photo without faces: a table of every decision."""
        by_photo: dict[tuple[str, str], list[FaceRecord]] = {}
        for face in self.faces:
            by_photo.setdefault((face.photo_id, face.photo_sha256), []).append(face)
        rows: list[dict[str, Any]] = []
        for photo in self.photos:
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
            "faces": [_face_to_json(face, base) for face in self.faces],
        }
        write_json_atomic(path, payload)

    @classmethod
    def read_json(cls, path: Path) -> CropsManifest:
        """The manifest `write_json` wrote, crop paths made absolute again."""
        path = Path(path)
        payload = json.loads(path.read_text())
        if payload.get("version") != MANIFEST_VERSION:
            raise ValueError(f"{path}: manifest version {payload.get('version')} is not {MANIFEST_VERSION}")
        base = path.parent.resolve()
        return cls(
            settings_key=payload["settings_key"],
            crop_size=payload["crop_size"],
            detector=payload["detector"],
            photos=tuple(PhotoOutcome(**photo) for photo in payload["photos"]),
            faces=tuple(_face_from_json(face, base) for face in payload["faces"]),
            settings=payload.get("settings", {}),
        )


def _face_to_json(face: FaceRecord, base: Path) -> dict[str, Any]:
    data = {f.name: getattr(face, f.name) for f in fields(face)}
    data["box"] = [round(v, 3) for v in face.box]
    data["landmarks"] = [[round(x, 3), round(y, 3)] for x, y in face.landmarks]
    data["yaw_ratio"] = face.yaw_ratio if face.yaw_ratio != float("inf") else None  # JSON has no inf
    data["crop_path"] = _relative(face.crop_path, base) if face.crop_path else None
    return data


def _face_from_json(data: dict[str, Any], base: Path) -> FaceRecord:
    face = FaceRecord(**data)
    return replace(
        face,
        box=tuple(data["box"]),
        landmarks=tuple((float(x), float(y)) for x, y in data["landmarks"]),
        yaw_ratio=float("inf") if data["yaw_ratio"] is None else data["yaw_ratio"],
        crop_path=(base / data["crop_path"]).resolve() if data["crop_path"] else None,
    )


def _relative(path: Path, base: Path) -> str:
    try:
        return os.path.relpath(Path(path).resolve(), base)
    except ValueError:  # another drive (Windows): keep it absolute
        return str(Path(path).resolve())
