"""photos -> aligned face crops, incrementally and with every photo accounted for.

The `face_crops` asset calls `extract_faces`. Each photo is decoded, searched for faces, every
face aligned to the ArcFace template and quality-checked; kept crops are written as PNG under
`out_dir/crops/<settings key>/<photo sha256>_<face index>.png`. The outcome of each photo is
cached under `out_dir/cache/<settings key>/<photo sha256>.json`, so a re-run only decodes photos
whose content or whose result-affecting settings are new; the detector is not even loaded when
everything is cached. A photo that cannot be read is recorded, never fatal.

With dlib and more than one worker (`detector.workers`, 0 = one per core) each photo's whole job
runs in a worker process (`workers.py`): the same functions on the same bytes, so the same crops,
decisions and digest as in-process work (`workers=1`), about twice as fast on two cores. RetinaFace
runs in this process, one forward pass per `detector.batch_size` photos on the device.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from facecraft_pipeline.atomic import write_bytes_atomic, write_json_atomic
from facecraft_pipeline.faces.align import align_face
from facecraft_pipeline.faces.crops_manifest import CropsManifest, FaceRecord, PhotoOutcome
from facecraft_pipeline.faces.detect import FaceDetector, make_detector
from facecraft_pipeline.faces.detector_settings import DetectorSettings
from facecraft_pipeline.faces.quality import QualitySettings, judge, measure
from facecraft_pipeline.faces.types import Face
from facecraft_pipeline.faces.workers import BrokenProcessPool, discard_pool, get_pool, worker_count
from facecraft_pipeline.imaging import ImageDecodeError, load_rgb
from facecraft_pipeline.settings import from_dict, nested, result_fields, setting, to_dict, validate

if TYPE_CHECKING:
    import torch

# Bump when a code change alters crops or decisions: it is part of the cache key and the digest.
EXTRACT_VERSION = "1"
IN_FLIGHT = 32  # photos queued per worker process: enough to keep it busy, few enough to hold in memory
_SKIPPED_DECODE_REASONS = frozenset({"too-small"})
# Outcomes that may change without the photo's bytes changing (a file not there yet, a full disk):
# never cached, so the next run tries again.
_NOT_CACHED_REASONS = frozenset({"error", "missing-file"})

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class FaceCropSettings:
    """Everything the face_crops stage can be told: the crop, the detector and the quality rules.

    The detector's and the quality rules' fields are declared once, in `DetectorSettings` and
    `QualitySettings`, and nested here (launchpad sections `detector` and `quality`;
    `--set face_crops.detector.kind=retinaface`).
    """

    crop_size: int = setting(128, "side of the aligned square crops in pixels (ArcFace template scaled by size/112)", minimum=16)
    detector: DetectorSettings = nested(DetectorSettings, "which face detector runs and how hard it looks")
    quality: QualitySettings = nested(QualitySettings, "which detected faces are good enough to keep, and why not")
    max_pixels: int = setting(80_000_000, "refuse photos with more pixels than this (decompression bombs)", minimum=1)
    min_side: int = setting(64, "skip photos with a side shorter than this", minimum=1)

    def __post_init__(self) -> None:
        validate(self)

    @classmethod
    def from_stored(cls, values: Mapping[str, Any]) -> FaceCropSettings:
        """Settings from a manifest's stored dict: today's nested form, or the flat one before it."""
        if "dlib_model" not in values:
            return from_dict(cls, values)
        flat = dict(values)
        detector = {name: flat.pop(name) for name in _LEGACY_DETECTOR if name in flat}
        detector["kind"] = flat.pop("detector", "dlib")
        if "detector_min_score" in flat:
            detector["min_score"] = flat.pop("detector_min_score")
        quality = {name: flat.pop(name) for name in _LEGACY_QUALITY if name in flat}
        return from_dict(cls, {**flat, "detector": detector, "quality": quality})

    def detector_settings(self) -> DetectorSettings:
        return self.detector

    def quality_settings(self) -> QualitySettings:
        return self.quality

    @property
    def cache_key(self) -> str:
        """16 hex chars naming everything that affects crops and decisions (and the code version).

        Speed-only fields (`run_key=False`: batch size, workers, downloading) are left out; the
        detector's score floor enters as the effective value, so a new default invalidates. The
        fields are keyed by their flat names of before the nesting (`detector` = the kind,
        `detector_min_score`), so crops cached before it are still found.
        """
        fields = result_fields(self)
        detector, quality = fields.pop("detector"), fields.pop("quality")
        relevant = {**fields, **quality, **{name: value for name, value in detector.items() if name not in ("kind", "min_score")}}
        relevant["detector"] = self.detector.kind
        relevant["detector_min_score"] = self.detector.score_floor
        relevant["_version"] = EXTRACT_VERSION
        return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


_LEGACY_DETECTOR = ("dlib_model", "upsample", "retinaface_weights", "retinaface_max_size", "retinaface_download", "batch_size", "max_side", "workers")
_LEGACY_QUALITY = ("min_face_px", "min_score", "min_sharpness", "max_yaw_ratio", "eyes_in_box")


ExtractSettings = FaceCropSettings


@dataclass(frozen=True)
class PhotoInput:
    """One photo to process: its id in the source, its local file and the sha256 of that file."""

    photo_id: str
    path: Path
    sha256: str


def extract_faces(
    photos: Sequence[PhotoInput],
    out_dir: Path,
    settings: FaceCropSettings = FaceCropSettings(),
    device: str | torch.device = "cpu",
    on_progress: ProgressCallback | None = None,
) -> CropsManifest:
    """Crops and decisions for every photo; only photos missing from the cache are computed."""
    out_dir = Path(out_dir)
    key = settings.cache_key
    cache_dir, crop_dir = out_dir / "cache" / key, out_dir / "crops" / key
    cache_dir.mkdir(parents=True, exist_ok=True)
    crop_dir.mkdir(parents=True, exist_ok=True)
    unique = list({photo.sha256: photo for photo in photos}.values())  # same bytes: computed once
    results: dict[str, dict[str, Any]] = {}
    pending = []
    for photo in unique:
        cached = _read_cache(cache_dir / f"{photo.sha256}.json", out_dir)
        if cached is None:
            pending.append(photo)
        else:
            results[photo.sha256] = cached | {"from_cache": True}
    done, total = len(results), len(unique)
    if on_progress:
        on_progress(done, total)
    def record(photo: PhotoInput, result: dict[str, Any]) -> None:
        results[photo.sha256] = result | {"from_cache": False}
        if result["reason"] not in _NOT_CACHED_REASONS:
            _write_cache(cache_dir / f"{photo.sha256}.json", result)

    batch = settings.detector.batch_size
    if pending and uses_worker_processes(settings, len(pending)):
        # dlib: each photo's whole job (decode, detect, landmarks, align, judge, PNG) in a worker process.
        with closing(_in_worker_processes(pending, settings, crop_dir, out_dir)) as outcomes:
            for position, (photo, result) in enumerate(outcomes, start=1):
                record(photo, result)  # cached as it arrives: a run killed half-way keeps what it did
                if on_progress and (position % batch == 0 or position == len(pending)):
                    on_progress(done + position, total)
    elif pending:
        detector = make_detector(settings.detector, device)
        workers = settings.detector.workers or os.cpu_count() or 1
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="extract") as pool:
            for start in range(0, len(pending), batch):
                chunk = pending[start : start + batch]
                for photo, result in zip(chunk, _process_chunk(chunk, detector, settings, crop_dir, out_dir, pool)):
                    record(photo, result)
                done += len(chunk)
                if on_progress:
                    on_progress(done, total)
    return _manifest(photos, results, settings, out_dir, detector_name=_detector_name(settings))


def uses_worker_processes(settings: FaceCropSettings, pending: int) -> bool:
    """dlib work goes to worker processes unless one worker is asked for or there is one photo to do."""
    return settings.detector.kind == "dlib" and worker_count(settings.detector.workers) > 1 and pending > 1


def _in_worker_processes(
    pending: Sequence[PhotoInput], settings: FaceCropSettings, crop_dir: Path, out_dir: Path
) -> Iterator[tuple[PhotoInput, dict[str, Any]]]:
    """(photo, outcome) in input order, each as soon as it and those before it are done; at most IN_FLIGHT photos a
    worker are queued at a time, so memory does not grow with the library. A crashed worker (dlib aborting on
    a photo) fails only the photos queued at that moment; the rest go to a fresh pool."""
    workers = worker_count(settings.detector.workers)
    queued: deque[tuple[PhotoInput, Future]] = deque()
    photos = iter(pending)
    crashed = False
    try:
        while True:
            while len(queued) < IN_FLIGHT * workers and (photo := next(photos, None)) is not None:
                job = (photo, settings, crop_dir, out_dir)
                try:
                    future = get_pool(workers).submit(photo_in_worker, job)
                except BrokenProcessPool:  # broke while we were queueing: this photo goes to a fresh pool
                    discard_pool()
                    future = get_pool(workers).submit(photo_in_worker, job)
                queued.append((photo, future))
            if not queued:
                return
            photo, future = queued.popleft()
            try:
                yield photo, future.result()
            except BrokenProcessPool as error:
                crashed = True
                yield photo, _failure("error", RuntimeError(f"a face worker process died ({error})"))
    finally:  # also when the caller stops early (an error while recording an outcome)
        if crashed or multiprocessing.parent_process() is not None:
            # After a crash the next run starts a fresh pool. A process that multiprocessing started (a step of
            # Dagster's multiprocess executor) waits at exit for every child it has, and runs no atexit hooks.
            discard_pool()


_WORKER_DETECTORS: dict[DetectorSettings, FaceDetector] = {}


def worker_detector(settings: DetectorSettings) -> FaceDetector:
    """This process's detector for `settings`, single-threaded (the pool is the parallelism)."""
    key = dataclasses.replace(settings, workers=1, batch_size=1, retinaface_download=False)
    if key not in _WORKER_DETECTORS:
        _WORKER_DETECTORS[key] = make_detector(key)
    return _WORKER_DETECTORS[key]


def photo_in_worker(job: tuple[PhotoInput, FaceCropSettings, Path, Path]) -> dict[str, Any]:
    """One photo's whole job, in a worker process: exactly what `_process_chunk` does for it in-process."""
    photo, settings, crop_dir, out_dir = job
    decoded = _decode(photo, settings)
    if not isinstance(decoded, np.ndarray):
        return decoded
    try:
        faces = worker_detector(settings.detector).detect([decoded])[0]
    except Exception as error:  # noqa: BLE001 - one failed photo, not a failed run
        return _failure("error", error)
    return _crops_or_failure(photo, decoded, faces, settings.crop_size, settings.quality, crop_dir, out_dir)


def _process_chunk(
    chunk: Sequence[PhotoInput],
    detector: FaceDetector,
    settings: FaceCropSettings,
    crop_dir: Path,
    out_dir: Path,
    pool: ThreadPoolExecutor,
) -> list[dict[str, Any]]:
    """Decode, detect (one batched call), then align/judge/write per photo; failures stay per photo."""
    decoded = list(pool.map(lambda photo: _decode(photo, settings), chunk))
    results: list[dict[str, Any] | None] = [None if isinstance(item, np.ndarray) else item for item in decoded]
    images = [(index, item) for index, item in enumerate(decoded) if isinstance(item, np.ndarray)]
    found = _detect_isolating_failures([image for _, image in images], detector)
    jobs = []
    for (index, image), faces in zip(images, found):
        if isinstance(faces, Exception):
            results[index] = _failure("error", faces)
        else:
            jobs.append((index, image, faces))
    quality = settings.quality
    outputs = pool.map(lambda job: _crops_or_failure(chunk[job[0]], job[1], job[2], settings.crop_size, quality, crop_dir, out_dir), jobs)
    for (index, _, _), output in zip(jobs, outputs):
        results[index] = output
    assert all(result is not None for result in results)
    return results  # type: ignore[return-value]


def _decode(photo: PhotoInput, settings: FaceCropSettings) -> np.ndarray | dict[str, Any]:
    try:
        return load_rgb(photo.path, max_pixels=settings.max_pixels, min_side=settings.min_side)
    except ImageDecodeError as error:
        status = "skipped" if error.reason in _SKIPPED_DECODE_REASONS else "failed"
        return {"status": status, "reason": error.reason, "detail": str(error), "width": 0, "height": 0, "faces": []}
    except FileNotFoundError as error:
        return _failure("missing-file", error)
    except Exception as error:  # noqa: BLE001 - any decoder bug is one failed photo, not a failed run
        return _failure("error", error)


def _failure(reason: str, error: BaseException) -> dict[str, Any]:
    return {"status": "failed", "reason": reason, "detail": f"{type(error).__name__}: {error}", "width": 0, "height": 0, "faces": []}


def _detect_isolating_failures(images: list[np.ndarray], detector: FaceDetector) -> list[list[Face] | Exception]:
    """One batched call; if it raises, photo by photo so only the culprit is marked failed."""
    if not images:
        return []
    try:
        return list(detector.detect(images))
    except Exception:  # noqa: BLE001
        outcomes: list[list[Face] | Exception] = []
        for image in images:
            try:
                outcomes.append(detector.detect([image])[0])
            except Exception as error:  # noqa: BLE001
                outcomes.append(error)
        return outcomes


def _crops_or_failure(photo: PhotoInput, image: np.ndarray, faces: list[Face], *args: Any) -> dict[str, Any]:
    try:
        return _crops_for_photo(photo, image, faces, *args)
    except Exception as error:  # noqa: BLE001 - e.g. a full disk: this photo fails, the run goes on
        return _failure("error", error)


def _crops_for_photo(
    photo: PhotoInput,
    image: np.ndarray,
    faces: list[Face],
    crop_size: int,
    quality: QualitySettings,
    crop_dir: Path,
    out_dir: Path,
) -> dict[str, Any]:
    height, width = image.shape[:2]
    records = []
    for index, face in enumerate(faces):
        crop = align_face(image, face.landmarks, crop_size)
        measures = measure(face, crop)
        reason = judge(face, measures, quality)
        record: dict[str, Any] = {
            "index": index,
            "box": [round(v, 3) for v in face.box],
            "landmarks": [[round(float(x), 3), round(float(y), 3)] for x, y in face.landmarks],
            "score": round(face.score, 6),
            "face_px": round(measures.face_px, 3),
            "sharpness": round(measures.sharpness, 3),
            "yaw_ratio": None if measures.yaw_ratio == float("inf") else round(measures.yaw_ratio, 4),
            "kept": reason is None,
            "reason": reason or "",
            "crop": None,
            "crop_sha256": None,
        }
        if reason is None:
            path = crop_dir / f"{photo.sha256}_{index}.png"
            record["crop_sha256"] = _write_png(path, crop)
            record["crop"] = os.path.relpath(path, out_dir)
        records.append(record)
    status, reason = ("processed", "") if faces else ("skipped", "no-face")
    return {"status": status, "reason": reason, "detail": "", "width": width, "height": height, "faces": records}


def _write_png(path: Path, crop: np.ndarray) -> str:
    """Write the crop (atomically) and return the sha256 of the file's bytes."""
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise OSError(f"could not encode {path.name}")
    data = encoded.tobytes()
    write_bytes_atomic(path, data)
    return hashlib.sha256(data).hexdigest()


def _read_cache(path: Path, out_dir: Path) -> dict[str, Any] | None:
    """A cached outcome, or None if absent, unreadable, or one of its crop files has gone."""
    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    for face in result.get("faces", []):
        if face.get("crop") and not (out_dir / face["crop"]).is_file():
            return None
    return result


def _write_cache(path: Path, result: dict[str, Any]) -> None:
    write_json_atomic(path, result, indent=None)


def _detector_name(settings: FaceCropSettings) -> str:
    return settings.detector.name


def _manifest(
    photos: Sequence[PhotoInput], results: dict[str, dict[str, Any]], settings: FaceCropSettings, out_dir: Path, detector_name: str
) -> CropsManifest:
    outcomes, faces = [], []
    for photo in photos:
        result = results[photo.sha256]
        records = result["faces"]
        outcomes.append(
            PhotoOutcome(
                photo_id=photo.photo_id,
                photo_sha256=photo.sha256,
                path=str(photo.path),
                status=result["status"],
                reason=result["reason"],
                detail=result["detail"],
                width=result["width"],
                height=result["height"],
                faces=len(records),
                kept=sum(record["kept"] for record in records),
                from_cache=result["from_cache"],
            )
        )
        for record in records:
            faces.append(
                FaceRecord(
                    photo_id=photo.photo_id,
                    photo_sha256=photo.sha256,
                    index=record["index"],
                    box=tuple(record["box"]),
                    landmarks=tuple((x, y) for x, y in record["landmarks"]),
                    score=record["score"],
                    face_px=record["face_px"],
                    sharpness=record["sharpness"],
                    yaw_ratio=float("inf") if record["yaw_ratio"] is None else record["yaw_ratio"],
                    kept=record["kept"],
                    reason=record["reason"],
                    crop_path=(out_dir / record["crop"]).resolve() if record["crop"] else None,
                    crop_sha256=record["crop_sha256"],
                )
            )
    return CropsManifest(
        settings_key=settings.cache_key,
        crop_size=settings.crop_size,
        detector=detector_name,
        photos=tuple(outcomes),
        faces=tuple(faces),
        settings=to_dict(settings),
    )
