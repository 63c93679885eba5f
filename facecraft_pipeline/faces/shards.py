"""Face extraction split into shards of the library, so that many machines share a big first pass.

A photo's shard is a stable hash of its photo id (not of its bytes: an edited photo stays in its
shard), so the split is the same in every process, on every machine and across runs, and a new
photo lands in exactly one shard. `extract_shard` runs `extract_faces` over one shard's photos:
it fills the per-photo cache (`faces/cache/<settings key>/<sha256>.json`) and writes the crops,
each photo to its own files, so shards on different machines sharing the data root never write
the same file and need no lock. `face_crops` then assembles its store from that cache without
decoding a photo again: the same manifest, crops and digest as a run that computed everything
itself (the cache holds exactly what `extract_faces` would compute).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from facecraft_pipeline.faces.extract import FaceCropSettings, PhotoInput, ProgressCallback, extract_faces

if TYPE_CHECKING:
    import torch


def shard_keys(count: int) -> list[str]:
    """The shards' partition keys, zero-padded so they sort: 00, 01, ... (count - 1)."""
    if count < 1:
        raise ValueError(f"shard count must be at least 1, got {count}")
    width = len(str(count - 1))
    return [f"{index:0{width}d}" for index in range(count)]


def shard_of(photo_id: str, count: int) -> int:
    """The shard `photo_id` belongs to: the first 8 bytes of its sha256, modulo `count`."""
    return int.from_bytes(hashlib.sha256(photo_id.encode("utf-8", "surrogateescape")).digest()[:8], "big") % count


def in_shard(rows: Iterable[tuple[str, str, str]], index: int, count: int) -> list[tuple[str, str, str]]:
    """The (photo id, path, sha256) rows of shard `index` of `count`."""
    if not 0 <= index < count:
        raise ValueError(f"shard {index} is not one of 0..{count - 1}")
    return [row for row in rows if shard_of(row[0], count) == index]


@dataclass(frozen=True)
class ShardResult:
    """One shard's outcome: counts like `CropsManifest.counts`, and the digest of its part of the manifest."""

    index: int
    count: int
    settings_key: str
    counts: dict[str, int]
    reasons: dict[str, int]
    digest: str

    @property
    def summary(self) -> str:
        c = self.counts
        text = (f"shard {self.index} of {self.count}: {c['kept']} faces kept from {c['photos']} photos "
                f"({c['skipped']} skipped, {c['failed']} failed, {c['computed']} computed, {c['from_cache']} cached)")
        if c["photos"] and c["failed"] == c["photos"]:
            text += f"; every photo of this shard failed ({', '.join(sorted(self.reasons))}; each photo's reason: `facecraft manifest faces` after face_crops)"
        return text


def extract_shard(
    rows: Sequence[tuple[str, str, str]],
    index: int,
    count: int,
    out_dir: Path,
    settings: FaceCropSettings = FaceCropSettings(),
    device: str | torch.device = "cpu",
    on_progress: ProgressCallback | None = None,
) -> ShardResult:
    """Faces of shard `index` of `count` of the library's usable `rows` into `out_dir`'s cache and crops."""
    photos = [PhotoInput(photo_id, Path(path), sha256) for photo_id, path, sha256 in in_shard(rows, index, count)]
    part = extract_faces(photos, out_dir, settings, device, on_progress)
    return ShardResult(index, count, part.settings_key, part.counts, part.reasons, part.digest)
