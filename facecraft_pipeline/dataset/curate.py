"""Owner crops -> a versioned, immutable training dataset (train/val PNGs + manifest.json).

Every crop offered is either in the dataset or listed as excluded with a reason, so a person can
see why a photo was left out; the folder name is the content digest, so a trained model's data
version says exactly which images it saw, and re-running with the same inputs is free.
"""

from __future__ import annotations

import hashlib
import math
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from facecraft_pipeline.dataset.dedup import greedy_duplicates, hamming_matrix, phash
from facecraft_pipeline.dataset.library import LibraryFaces
from facecraft_pipeline.dataset.manifest import manifest_digest, publish, read_manifest, staging_dir
from facecraft_pipeline.dataset.split import connected_groups, links_by_key, split_groups
from facecraft_pipeline.faces.attributes import face_attributes
from facecraft_pipeline.faces.embed import embedding_distances
from facecraft_pipeline.faces.probe import ProbeSpec
from facecraft_pipeline.settings import setting, validate
from facecraft_pipeline.sources.base import IMAGE_SUFFIXES, sha256_file

DEDUP_MODES = ("phash", "embedding", "none")
DEFAULT_DEDUP_THRESHOLD = {"phash": 6.0, "embedding": 0.2, "none": 0.0}
FORMAT_VERSION = 1


@dataclass(frozen=True)
class CurateSettings:
    """How the training set is built. Defaults are the offline demo's.

    `resolution`: training size in px; smaller crops are excluded, never upsampled.
    `dedup`: "phash" (64-bit DCT hash), "embedding" (identity vectors, Euclidean) or "none"
    (byte-identical crops are always dropped). `dedup_threshold`: at most this far apart is a
    near duplicate; None = 6 bits for phash, 0.2 for embedding (dlib puts edits of one photo
    0.1-0.25 apart, different photos of one person usually farther).
    `split_group_bits`: kept crops whose hashes differ by at most this many bits (and crops of one
    source photo) stay on one side of the split.
    `drop`: photos or crops the owner leaves out, by photo id or (a >= 8-char prefix of) the
    photo's or crop's sha256; recorded in the manifest, so dropping changes the digest.
    `external_dir`: a folder of other people's face images (CelebA/FFHQ-style; centre-cropped
    square) mixed in so that they make up `external_ratio` of the dataset.
    """

    resolution: int = setting(64, "training size in px; smaller crops are excluded, never upsampled", minimum=8)
    val_fraction: float = setting(0.15, "share of the crops held out for validation", minimum=0, maximum=0.9)
    dedup: str = setting("phash", "near-duplicate removal: phash, embedding (identity vectors) or none (byte-identical crops are always dropped)", choices=DEDUP_MODES)
    dedup_threshold: float | None = setting(None, "at most this far apart is a near duplicate; empty: 6 bits (phash), 0.2 (embedding)", minimum=0)
    split_group_bits: int = setting(10, "crops whose hashes differ by at most this many bits stay on one side of the split", minimum=0, maximum=64)
    external_dir: str | None = setting(None, "folder of other people's face images mixed into the dataset; empty: none")
    external_ratio: float = setting(0.4, "share of the dataset the external images make up, in [0, 1)", minimum=0)
    seed: int = setting(0, "seed of the train/val split and the external sample")
    drop: tuple[str, ...] = setting((), "photos or crops the owner leaves out: photo ids, or >= 8 leading hex chars of a "
                                        "photo's or crop's sha256 (recorded in the manifest: the digest changes)")

    def __post_init__(self) -> None:
        validate(self)
        if not self.external_ratio < 1.0:
            raise ValueError(f"CurateSettings.external_ratio must be in [0, 1), got {self.external_ratio!r}")


@dataclass(frozen=True)
class CurationItem:
    """One owner face crop offered to the dataset, with the lineage the manifest keeps."""

    crop_path: Path
    crop_sha256: str
    photo_id: str
    photo_sha256: str
    box: tuple[float, ...] | None = None  # x1, y1, x2, y2 in the source photo
    landmarks: tuple[tuple[float, float], ...] | None = None  # five points in the source photo
    identity_distance: float | None = None  # to the owner centroid
    origin: str = "owner"  # "owner" | "external"
    face_px: float | None = None  # photo pixels the aligned crop covers: the crop was upsampled if below its size
    photo_path: str | None = None  # where the source photo is (the LoRA view crops it again, wider)
    photo_faces: int = 1  # faces detected in the source photo (the LoRA view's caption says "another person nearby")
    photo_boxes: tuple[tuple[float, ...], ...] = ()  # every face detected in the source photo (the LoRA view masks the others)


@dataclass(frozen=True)
class CuratedDataset:
    digest: str
    folder: Path
    train_paths: tuple[Path, ...]
    val_paths: tuple[Path, ...]
    counts: Mapping[str, int]
    excluded: tuple[tuple[CurationItem, str], ...]
    manifest_path: Path
    reused: bool = False  # True when an identical dataset was already published
    notes: tuple[str, ...] = field(default=())
    probe: ProbeSpec = ProbeSpec()  # how its faces were found and are compared (identity_clusters' probe): for the trainers
    library: LibraryFaces | None = None  # every person's faces with identities (identity-conditioned GANs)
    resolution: int = 0  # the side in px its images were curated for (no image smaller); 0: a value from before it was recorded

    @property
    def version(self) -> str:
        """The data version trainers key on: the owner's images and, when present, the library faces."""
        return f"{self.digest}-{self.library.digest[:16]}" if self.library is not None else self.digest


@dataclass
class _Candidate:
    item: CurationItem
    size: tuple[int, int]
    hash64: int
    embedding: np.ndarray | None = None
    split: str = "train"


@dataclass
class _Exclusion:
    item: CurationItem
    kind: str
    reason: str
    duplicate_of: CurationItem | None = None


def _check(settings: CurateSettings, items: Sequence[CurationItem], embeddings: np.ndarray | None) -> None:
    if settings.dedup not in DEDUP_MODES:
        raise ValueError(f"unknown dedup {settings.dedup!r}: use one of {DEDUP_MODES}")
    if settings.resolution < 8:
        raise ValueError(f"resolution must be at least 8 px, got {settings.resolution}")
    if not 0.0 <= settings.external_ratio < 1.0:
        raise ValueError(f"external_ratio must be in [0, 1), got {settings.external_ratio}")
    if embeddings is not None and len(embeddings) != len(items):
        raise ValueError(f"{len(items)} items but {len(embeddings)} embeddings")
    if settings.dedup == "embedding" and embeddings is None:
        raise ValueError('dedup "embedding" needs the crops\' embeddings')


def _dropped(item: CurationItem, drop: Sequence[str], exclusions: list[_Exclusion]) -> bool:
    """Is `item` named in the owner's drop list (recorded as excluded "dropped")?"""
    for name in drop:
        name = name.strip()
        if name == item.photo_id or (len(name) >= 8 and (item.photo_sha256.startswith(name) or item.crop_sha256.startswith(name))):
            exclusions.append(_Exclusion(item, "dropped", f"dropped by the owner ({name})"))
            return True
    return False


def _inspect(item: CurationItem, resolution: int) -> tuple[tuple[int, int], int] | _Exclusion:
    """(width, height), phash of a crop, or why it cannot be used."""
    try:
        with Image.open(item.crop_path) as image:
            image.load()
            size = image.size
            hash64 = phash(image)
    except (OSError, ValueError) as error:
        return _Exclusion(item, "unreadable", f"unreadable: {type(error).__name__}: {error}")
    if min(size) < resolution:
        reason = f"too small: {size[0]}x{size[1]} px < {resolution} px (never upsampled)"
        return _Exclusion(item, "too_small", reason)
    if item.face_px is not None and item.face_px < resolution:
        reason = f"too small: the face covers {item.face_px:.0f} photo px < {resolution} px (never upsampled)"
        return _Exclusion(item, "too_small", reason)
    return size, hash64


def _usable(
    items: Sequence[CurationItem],
    embeddings: Sequence[np.ndarray | None],
    resolution: int,
    exclusions: list[_Exclusion],
) -> list[_Candidate]:
    """Drop byte-identical, unreadable and too-small crops; the rest become candidates."""
    seen: dict[str, CurationItem] = {}
    candidates = []
    for item, embedding in zip(items, embeddings, strict=True):
        if item.crop_sha256 in seen:
            first = seen[item.crop_sha256]
            reason = f"exact duplicate of the crop from photo {first.photo_id} ({first.crop_sha256[:12]})"
            exclusions.append(_Exclusion(item, "exact_duplicate", reason, first))
            continue
        seen[item.crop_sha256] = item
        inspected = _inspect(item, resolution)
        if isinstance(inspected, _Exclusion):
            exclusions.append(inspected)
        else:
            candidates.append(_Candidate(item, *inspected, embedding=embedding))
    return candidates


def _drop_near_duplicates(
    candidates: list[_Candidate], settings: CurateSettings, exclusions: list[_Exclusion]
) -> list[_Candidate]:
    if settings.dedup == "none" or len(candidates) < 2:
        return candidates
    threshold = (
        settings.dedup_threshold if settings.dedup_threshold is not None else DEFAULT_DEDUP_THRESHOLD[settings.dedup]
    )
    if settings.dedup == "phash":
        distances = hamming_matrix([c.hash64 for c in candidates])
        unit = "bits"
    else:
        vectors = np.stack([c.embedding for c in candidates if c.embedding is not None])
        distances = embedding_distances(vectors, vectors, "euclidean")
        unit = "embedding distance"

    def preference(i: int) -> tuple[Any, ...]:
        item = candidates[i].item
        distance = item.identity_distance if item.identity_distance is not None else math.inf
        return (-min(candidates[i].size), distance, item.crop_sha256)

    duplicates = greedy_duplicates(distances, sorted(range(len(candidates)), key=preference), threshold)
    for dup in duplicates:
        kept = candidates[dup.kept].item
        reason = (
            f"near duplicate of the crop from photo {kept.photo_id} ({kept.crop_sha256[:12]}), "
            f"{settings.dedup} {unit} {dup.distance:.3g} <= {threshold:g}"
        )
        exclusions.append(_Exclusion(candidates[dup.index].item, "near_duplicate", reason, kept))
    dropped = {d.index for d in duplicates}
    return [c for i, c in enumerate(candidates) if i not in dropped]


def _external_candidates(
    settings: CurateSettings, owner_count: int, exclusions: list[_Exclusion], notes: list[str]
) -> list[_Candidate]:
    """Take external images in a seeded order until they make up `external_ratio`."""
    if not settings.external_dir or settings.external_ratio <= 0 or owner_count == 0:
        return []
    folder = Path(settings.external_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"external_dir is not a folder: {folder}")
    wanted = round(owner_count * settings.external_ratio / (1.0 - settings.external_ratio))
    files = sorted(
        (p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES), key=lambda p: p.as_posix()
    )
    chosen: list[_Candidate] = []
    seen: dict[str, CurationItem] = {}
    for index in np.random.default_rng(settings.seed).permutation(len(files)):
        if len(chosen) == wanted:
            break
        path = files[int(index)]
        sha = sha256_file(path)
        item = CurationItem(path, sha, f"external:{path.relative_to(folder).as_posix()}", sha, origin="external")
        if sha in seen:
            exclusions.append(
                _Exclusion(item, "exact_duplicate", f"exact duplicate of {seen[sha].photo_id}", seen[sha])
            )
            continue
        seen[sha] = item
        inspected = _inspect(item, settings.resolution)
        if isinstance(inspected, _Exclusion):
            exclusions.append(inspected)
        else:
            chosen.append(_Candidate(item, *inspected))
    if len(chosen) < wanted:
        notes.append(
            f"external_dir had {len(chosen)} usable images, {wanted} wanted for ratio {settings.external_ratio}"
        )
    return chosen


def _assign_splits(owner: list[_Candidate], external: list[_Candidate], settings: CurateSettings) -> None:
    links = links_by_key([c.item.photo_id for c in owner]) + links_by_key([c.item.photo_sha256 for c in owner])
    if len(owner) > 1:
        close = hamming_matrix([c.hash64 for c in owner]) <= settings.split_group_bits
        links += [(int(a), int(b)) for a, b in zip(*np.nonzero(np.triu(close, k=1)), strict=True)]
    groups = connected_groups(len(owner), links)
    for candidate, side in zip(
        owner,
        split_groups(groups, [c.item.crop_sha256 for c in owner], settings.val_fraction, settings.seed),
        strict=True,
    ):
        candidate.split = side
    sides = split_groups(
        list(range(len(external))), [c.item.crop_sha256 for c in external], settings.val_fraction, settings.seed
    )
    for candidate, side in zip(external, sides, strict=True):
        candidate.split = side


def _training_image(path: Path, resolution: int) -> Image.Image:
    """Centre square, resized down to `resolution` (LANCZOS)."""
    with Image.open(path) as opened:
        image = opened.convert("RGB")
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    image = image.crop((left, top, left + side, top + side))
    return image if side == resolution else image.resize((resolution, resolution), Image.Resampling.LANCZOS)


def _pixels_sha256(image: Image.Image) -> str:
    """Hash of the decoded pixels: independent of the PNG encoder's zlib."""
    return hashlib.sha256(f"{image.width}x{image.height}:".encode() + image.tobytes()).hexdigest()


def _rounded(values: Any, digits: int) -> Any:
    if values is None:
        return None
    if isinstance(values, np.ndarray):
        values = values.tolist()
    if isinstance(values, (list, tuple)):
        return [_rounded(v, digits) for v in values]
    value = float(values)
    return None if not math.isfinite(value) else round(value, digits)


def _item_record(item: CurationItem) -> dict[str, Any]:
    return {
        "origin": item.origin,
        "photo_id": item.photo_id,
        "photo_sha256": item.photo_sha256,
        "crop_sha256": item.crop_sha256,
        "box": _rounded(item.box, 3),
        "landmarks": _rounded(item.landmarks, 3),
        "identity_distance": _rounded(item.identity_distance, 6),
        "photo_path": item.photo_path,
        "photo_faces": item.photo_faces,
        "photo_boxes": _rounded(item.photo_boxes, 3),
    }


def _write_images(candidates: list[_Candidate], staging: Path, resolution: int) -> list[dict[str, Any]]:
    records = []
    for candidate in candidates:
        item = candidate.item
        relative = f"{candidate.split}/{item.origin}-{item.crop_sha256[:16]}.png"
        image = _training_image(item.crop_path, resolution)
        (staging / candidate.split).mkdir(exist_ok=True)
        image.save(staging / relative, format="PNG")
        record = _item_record(item)
        record.update(
            split=candidate.split, file=relative, pixels_sha256=_pixels_sha256(image), source_size=list(candidate.size)
        )
        with Image.open(item.crop_path) as crop:  # the GAN's control vector, measured on the full-size aligned crop
            record["attributes"] = face_attributes(np.asarray(crop.convert("RGB")))

        records.append(record)
    return sorted(records, key=lambda r: r["file"])


def _counts(owner_in: int, images: list[dict[str, Any]], exclusions: list[_Exclusion]) -> dict[str, int]:
    counts = {"owner_input": owner_in, "images": len(images), "excluded": len(exclusions)}
    for split in ("train", "val"):
        for origin in ("owner", "external"):
            counts[f"{split}_{origin}"] = sum(1 for r in images if r["split"] == split and r["origin"] == origin)
        counts[split] = counts[f"{split}_owner"] + counts[f"{split}_external"]
    counts["owner"] = counts["train_owner"] + counts["val_owner"]
    counts["external"] = counts["train_external"] + counts["val_external"]
    for exclusion in exclusions:
        counts[f"excluded_{exclusion.kind}"] = counts.get(f"excluded_{exclusion.kind}", 0) + 1
    return counts


def curate_dataset(
    items: Sequence[CurationItem],
    out_root: Path,
    settings: CurateSettings = CurateSettings(),
    embeddings: np.ndarray | None = None,
    probe: ProbeSpec = ProbeSpec(),
) -> CuratedDataset:
    """Build (or reuse) the dataset folder `out_root/<digest[:16]>/` for these owner crops.

    `embeddings` (one row per item) are needed for dedup "embedding" only; `probe` (the detector and embedder
    the items were found and embedded with) is handed on to the trainers, not part of the digest. The result
    does not depend on the order of `items`.
    """
    _check(settings, items, embeddings)
    order = sorted(range(len(items)), key=lambda i: (items[i].crop_sha256, items[i].photo_id, str(items[i].crop_path)))
    exclusions: list[_Exclusion] = []
    notes: list[str] = []
    order = [i for i in order if not _dropped(items[i], settings.drop, exclusions)]
    rows = [None if embeddings is None else np.asarray(embeddings[i]) for i in order]
    owner = _usable([items[i] for i in order], rows, settings.resolution, exclusions)
    owner = _drop_near_duplicates(owner, settings, exclusions)
    external = _external_candidates(settings, len(owner), exclusions, notes)
    _assign_splits(owner, external, settings)

    out_root = Path(out_root)
    staging = staging_dir(out_root)
    try:
        images = _write_images(owner + external, staging, settings.resolution)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    effective = asdict(settings)
    if settings.dedup_threshold is None:
        effective["dedup_threshold"] = DEFAULT_DEDUP_THRESHOLD[settings.dedup]
    body = {
        "format": FORMAT_VERSION,
        "settings": effective,
        "images": images,
        "excluded": sorted(
            (
                dict(
                    _item_record(e.item),
                    kind=e.kind,
                    reason=e.reason,
                    duplicate_of=None
                    if e.duplicate_of is None
                    else {"photo_id": e.duplicate_of.photo_id, "crop_sha256": e.duplicate_of.crop_sha256},
                )
                for e in exclusions
            ),
            key=lambda r: (r["origin"], r["crop_sha256"], r["photo_id"]),
        ),
        "counts": _counts(len(items), images, exclusions),
        "notes": notes,
    }
    digest = manifest_digest(body)
    final = out_root / digest[:16]
    published = publish(staging, final, body, digest)
    manifest = read_manifest(final)
    return CuratedDataset(
        digest=digest,
        folder=final,
        train_paths=tuple(final / r["file"] for r in manifest["images"] if r["split"] == "train"),
        val_paths=tuple(final / r["file"] for r in manifest["images"] if r["split"] == "val"),
        counts=manifest["counts"],
        excluded=tuple((e.item, e.reason) for e in exclusions),
        manifest_path=final / "manifest.json",
        reused=not published,
        notes=tuple(notes),
        probe=probe,
        resolution=settings.resolution,
    )
