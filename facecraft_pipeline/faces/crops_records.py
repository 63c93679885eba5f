"""One photo's and one face's record of a face-extraction run, and how each enters the digest and JSON.

Shared by the manifest in memory (`crops_manifest.py`) and the store that keeps it (`crops_store.py`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal

from facecraft_pipeline.sqlite_store import AdditiveDigest

PhotoStatus = Literal["processed", "skipped", "failed"]


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


def digest_salt(settings_key: str) -> str:
    return f"settings {settings_key}"


def photo_term(photo: PhotoOutcome) -> int:
    return AdditiveDigest.term(f"photo {photo.photo_sha256} {photo.status} {photo.reason}")


def face_term(face: FaceRecord) -> int:
    return AdditiveDigest.term(f"face {face.photo_sha256} {face.index} {'kept' if face.kept else 'rejected'} {face.reason} {face.crop_sha256 or '-'}")


def face_to_json(face: FaceRecord, base: Path) -> dict[str, Any]:
    data = {f.name: getattr(face, f.name) for f in fields(face)}
    data["box"] = [round(v, 3) for v in face.box]
    data["landmarks"] = [[round(x, 3), round(y, 3)] for x, y in face.landmarks]
    data["yaw_ratio"] = face.yaw_ratio if face.yaw_ratio != float("inf") else None  # JSON has no inf
    data["crop_path"] = relative_path(face.crop_path, base) if face.crop_path else None
    return data


def face_from_json(data: dict[str, Any], base: Path) -> FaceRecord:
    face = FaceRecord(**data)
    return replace(
        face,
        box=tuple(data["box"]),
        landmarks=tuple((float(x), float(y)) for x, y in data["landmarks"]),
        yaw_ratio=float("inf") if data["yaw_ratio"] is None else data["yaw_ratio"],
        crop_path=(base / data["crop_path"]).resolve() if data["crop_path"] else None,
    )


def relative_path(path: Path, base: Path) -> str:
    try:
        return os.path.relpath(Path(path).resolve(), base)
    except ValueError:  # another drive (Windows): keep it absolute
        return str(Path(path).resolve())
