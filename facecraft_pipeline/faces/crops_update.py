"""Bring the stored face-crops manifest up to date with the library, touching only what changed.

Compares the library's usable photos with the store's rows by (photo id, sha256, path): only
new or changed photos go through `extract_faces` (which itself reads its per-photo cache first),
photos that left are dropped, everything else stays as stored. A crop deleted by hand is noticed
through its folder's mtime (its photo is then computed again). The result is the same manifest
`extract_faces` would build over the whole library, held in the store (tested).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from facecraft_pipeline.faces.crops_manifest import CropsManifest, StoredCropsManifest
from facecraft_pipeline.faces.crops_store import STORE_NAME, CropsStore
from facecraft_pipeline.faces.extract import FaceCropSettings, PhotoInput, ProgressCallback, extract_faces
from facecraft_pipeline.settings import to_dict
from facecraft_pipeline.sqlite_store import RACY_MTIME_NS

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class CropsUpdate:
    """The whole manifest (a handle on the store), and the part this run computed or re-read."""

    manifest: StoredCropsManifest
    part: CropsManifest
    removed: int
    rebuilt: bool  # the settings key changed: every photo was taken again from the per-photo cache


def update_crops(
    photos: Sequence[PhotoInput] | Sequence[tuple[str, str, str]],
    out_dir: Path,
    settings: FaceCropSettings = FaceCropSettings(),
    device: str | torch.device = "cpu",
    on_progress: ProgressCallback | None = None,
) -> CropsUpdate:
    """The store under `out_dir` made equal to `extract_faces(photos, ...)`, computing only the new photos.

    `photos`: `PhotoInput`s, or (photo id, path, sha256) rows as `PhotoManifest.usable_rows` gives
    them (no object per photo: only the photos to compute become `PhotoInput`s).
    """
    out_dir = Path(out_dir)
    store = CropsStore(out_dir / STORE_NAME)
    meta = store.meta()
    key = settings.cache_key
    rebuild = json.loads(meta.get("settings_key", '""')) != key
    listed = {} if rebuild else store.listed()
    rows = [(p.photo_id, str(p.path), p.sha256) if isinstance(p, PhotoInput) else p for p in photos]
    wanted = {photo_id: (photo_id, path, sha256) for photo_id, path, sha256 in rows}
    todo = {row[0]: row for row in rows if listed.get(row[0]) != (row[2], row[1])}
    removed = [photo_id for photo_id in listed if photo_id not in wanted]
    crop_dir = out_dir / "crops" / key
    recorded = meta.get("crops_mtime", "-1")
    if not rebuild and (recorded == "-1" or recorded != str(_mtime(crop_dir))):
        present = set(os.listdir(crop_dir)) if crop_dir.is_dir() else set()
        for photo_id, crops in store.kept_crops().items():
            if photo_id in wanted and any(Path(crop).name not in present for crop in crops):
                todo.setdefault(photo_id, wanted[photo_id])
    part = extract_faces([PhotoInput(i, Path(path), sha) for i, path, sha in todo.values()], out_dir, settings, device, on_progress)
    header = {"settings_key": key, "crop_size": settings.crop_size, "detector": part.detector, "settings": to_dict(settings)}
    summary = store.apply(header, part.photos, part.faces, removed, reset=rebuild, extra_meta={"crops_mtime": str(_mtime(crop_dir))})
    return CropsUpdate(StoredCropsManifest(store.path, summary), part, len(removed), rebuild)


def _mtime(folder: Path) -> int:
    """The folder's mtime, or -1 when absent or too recent to vouch for its contents."""
    try:
        mtime = folder.stat().st_mtime_ns
    except OSError:
        return -1
    return -1 if time.time_ns() - mtime < RACY_MTIME_NS else mtime
