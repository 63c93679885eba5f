"""Identity embeddings of ArcFace-aligned face crops, and a content-addressed cache for them.

Two embedders share one small protocol so clustering and scoring never care which runs:
dlib's 128-d ResNet (offline, ships with `face-recognition-models`, the demo default) and any
ArcFace ONNX model the user supplies (insightface's `w600k_r50.onnx` and the like).
Crops arrive aligned to the ArcFace 5-point template at some size S (resizing to 112 px gives
exactly the ArcFace 112 crop), as RGB uint8 HxWx3 arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from facecraft_pipeline.atomic import atomic_path
from facecraft_pipeline.imaging import load_rgb
from facecraft_pipeline.sources.base import sha256_file


class Embedder(Protocol):
    """Maps aligned face crops to identity vectors.

    `name` identifies the model *and* its preprocessing (it keys the cache); `metric` is the
    distance the vectors are meant for ("euclidean" or "cosine"); two crops closer than
    `same_person_distance` under that metric are the same person by the model's usual rule.
    """

    name: str
    dim: int
    metric: str
    same_person_distance: float

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """(N, dim) float32 vectors for N RGB uint8 crops."""
        ...


def _check_crop(crop: np.ndarray) -> np.ndarray:
    if crop.dtype != np.uint8 or crop.ndim != 3 or crop.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 HxWx3 crop, got dtype {crop.dtype} shape {crop.shape}")
    return np.ascontiguousarray(crop)


# Where dlib's HOG detector puts its box on an ArcFace-aligned face, as fractions of the crop
# (left, top, right, bottom). dlib's 5-point predictor starts from a detector box, so we hand
# it this one; measured on the sample photos (their boxes span x 0.10-0.17..0.83-0.89,
# y 0.25-0.30..0.96-1.01), rounded inwards, which re-located landmarks best.
_DETECTOR_BOX_IN_ARCFACE = (0.12, 0.20, 0.88, 0.95)


EMBEDDING_ENGINES = ("torch", "dlib")


class DlibEmbedder:
    """dlib's 128-d face-recognition ResNet (LFW 99.38%), Euclidean, same person below 0.6.

    From an ArcFace crop we re-run dlib's own 5-point predictor and cut dlib's own 150 px chip
    (padding 0.25), i.e. the exact input dlib's pipeline feeds the network. The ArcFace frame is
    tighter than that chip: 12-16% of the chip falls outside the crop and stays black, which moves
    vectors 0.11-0.16 from what dlib gives on the full photo (measured); every crop pays the same
    cost, so crop-to-crop distances keep dlib's 0.6 rule.

    `engine`: "torch" (default) runs dlib's network re-implemented in PyTorch (`dlib_resnet.py`,
    weights read from dlib's file) in batches on `device`; "dlib" runs dlib's own forward pass, one
    thread, ~10x slower on CPU. Both give the same vectors within 1e-6, so they share a name and a cache.
    """

    metric = "euclidean"
    dim = 128

    def __init__(self, same_person_distance: float = 0.6, jitters: int = 0, engine: str = "torch", device: str = "cpu") -> None:
        import dlib  # imported here so the module loads where dlib is absent

        from facecraft_pipeline.faces.model_files import RESNET_EMBEDDING, SHAPE_5, dlib_model_path, shape_predictor

        if engine not in EMBEDDING_ENGINES:
            raise ValueError(f"engine must be one of {list(EMBEDDING_ENGINES)}, got {engine!r}")
        if jitters and engine != "dlib":
            raise ValueError("jitters (dlib's random re-crops) need engine='dlib'")
        self._dlib = dlib
        self._predictor = shape_predictor(SHAPE_5)
        self._model_path = dlib_model_path(RESNET_EMBEDDING)
        self.engine, self.device = engine, str(device)
        self._network = dlib.face_recognition_model_v1(str(self._model_path)) if engine == "dlib" else None
        self.same_person_distance = same_person_distance
        self.jitters = jitters
        # Bump the suffix whenever the preprocessing changes: it invalidates cached vectors.
        self.name = "dlib-resnet-v1.arcface-chip-v1" + (f".jitter{jitters}" if jitters else "")

    def chip(self, crop: np.ndarray) -> np.ndarray:
        """dlib's 150x150 network input for one ArcFace crop (for inspection and tests)."""
        crop = _check_crop(crop)
        height, width = crop.shape[:2]
        left, top, right, bottom = _DETECTOR_BOX_IN_ARCFACE
        box = self._dlib.rectangle(
            round(left * width), round(top * height), round(right * width), round(bottom * height)
        )
        shape = self._predictor(crop, box)
        return np.asarray(self._dlib.get_face_chip(crop, shape, size=150, padding=0.25))

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        if len(crops) == 0:
            return np.zeros((0, self.dim), np.float32)
        chips = [self.chip(crop) for crop in crops]
        if self._network is not None:
            vectors = self._network.compute_face_descriptor(chips, self.jitters)
            return np.asarray([np.asarray(v) for v in vectors], dtype=np.float32).reshape(len(chips), self.dim)
        import torch

        from facecraft_pipeline.faces.dlib_resnet import chips_to_tensor, load_dlib_resnet

        network = load_dlib_resnet(str(self._model_path), self.device)
        # Full float32 convolutions on CUDA too (cuDNN's TF32 default would move vectors by ~1e-3).
        with torch.inference_mode(), torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=False, allow_tf32=False):
            return network(chips_to_tensor(chips, self.device)).float().cpu().numpy()


class OnnxArcFaceEmbedder:
    """An ArcFace-family ONNX model the user supplies (nothing is downloaded), cosine metric.

    Preprocessing follows insightface's convention for its recognition models: RGB, resized to the
    model's input size (112x112 when the graph does not say), (x - 127.5) / 127.5, NCHW float32.
    The output is L2-normalised, so cosine distance = 1 - dot product. `same_person_distance` 0.6
    (cosine similarity 0.4) is a common conservative cut for insightface's r50/r100 models.
    """

    metric = "cosine"

    def __init__(self, model_path: str | Path, same_person_distance: float = 0.6) -> None:
        import onnxruntime as ort

        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise FileNotFoundError(f"ONNX face model not found: {self.model_path}")
        wanted = ("CUDAExecutionProvider", "CPUExecutionProvider")
        providers = [p for p in wanted if p in ort.get_available_providers()]
        self._session = ort.InferenceSession(str(self.model_path), providers=providers)
        model_input = self._session.get_inputs()[0]
        self._input_name = model_input.name
        shape = list(model_input.shape)
        if len(shape) != 4 or shape[1] not in (3, "3"):
            raise ValueError(f"expected an NCHW 3-channel input, the model declares {shape}")
        self._fixed_batch = shape[0] if isinstance(shape[0], int) else None
        self.input_size = (
            (int(shape[3]), int(shape[2])) if isinstance(shape[2], int) and isinstance(shape[3], int) else (112, 112)
        )
        self.same_person_distance = same_person_distance
        self.name = f"onnx-arcface-{sha256_file(self.model_path)[:16]}"
        self.dim = int(self.embed([np.zeros((self.input_size[1], self.input_size[0], 3), np.uint8)]).shape[1])

    def preprocess(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """(N, 3, H, W) float32 in [-1, 1] (insightface's (x - 127.5) / 127.5)."""
        width, height = self.input_size
        batch = []
        for crop in crops:
            crop = _check_crop(crop)
            if crop.shape[:2] != (height, width):
                shrinking = crop.shape[0] > height
                crop = cv2.resize(
                    crop, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
                )
            batch.append(crop)
        array = (np.stack(batch).astype(np.float32) - 127.5) / 127.5
        return np.ascontiguousarray(array.transpose(0, 3, 1, 2))

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        if len(crops) == 0:
            return np.zeros((0, getattr(self, "dim", 0)), np.float32)
        inputs = self.preprocess(crops)
        step = self._fixed_batch or len(inputs)
        outputs = [
            self._session.run(None, {self._input_name: inputs[i : i + step]})[0] for i in range(0, len(inputs), step)
        ]
        vectors = np.concatenate(outputs).reshape(len(inputs), -1).astype(np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)


def make_embedder(kind: str = "dlib", onnx_path: str | None = None, device: str = "cpu") -> Embedder:
    """The embedder a setting names: "dlib" (offline default; its network runs on `device`) or "onnx" (needs `onnx_path`)."""
    if kind == "dlib":
        return DlibEmbedder(device=device)
    if kind == "onnx":
        if not onnx_path:
            raise ValueError('embedder "onnx" needs onnx_path: the ArcFace .onnx file to use')
        return OnnxArcFaceEmbedder(onnx_path)
    raise ValueError(f'unknown embedder {kind!r}: use "dlib" or "onnx"')


@dataclass(frozen=True)
class CacheStats:
    hits: int
    misses: int


class EmbeddingCache:
    """Vectors stored as `<folder>/<embedder name>/<sha[:2]>/<crop sha256>.npy`.

    Keyed by content, not path, so a re-synced library only embeds crops it has never seen,
    and a different model or preprocessing (a different embedder name) never reuses vectors.
    Each file is written to a temporary name then renamed, so a killed run leaves no half files.
    """

    def __init__(self, folder: Path, batch_size: int = 32) -> None:
        self.folder = Path(folder)
        self.batch_size = batch_size
        self.last = CacheStats(0, 0)

    def _path(self, embedder_name: str, sha: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-._" else "_" for c in embedder_name)
        return self.folder / safe / sha[:2] / f"{sha}.npy"

    def _load(self, path: Path, dim: int) -> np.ndarray | None:
        try:
            vector = np.load(path)
        except (OSError, ValueError):
            return None
        return vector if vector.shape == (dim,) else None

    def _store(self, path: Path, vector: np.ndarray) -> None:
        with atomic_path(path) as temp, open(temp, "wb") as out:  # a handle: np.save would add ".npy" to a name
            np.save(out, vector)

    def embed_files(self, embedder: Embedder, crop_paths: Sequence[Path], crop_hashes: Sequence[str]) -> np.ndarray:
        """(N, dim) vectors for the crop files; only crops not cached yet are read and embedded.

        `self.last` reports the hits and misses of this call.
        """
        if len(crop_paths) != len(crop_hashes):
            raise ValueError(f"{len(crop_paths)} paths but {len(crop_hashes)} hashes")
        result = np.zeros((len(crop_paths), embedder.dim), np.float32)
        missing: dict[str, list[int]] = {}
        for index, sha in enumerate(crop_hashes):
            cached = self._load(self._path(embedder.name, sha), embedder.dim) if sha not in missing else None
            if cached is None:
                missing.setdefault(sha, []).append(index)
            else:
                result[index] = cached
        todo = list(missing.items())
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start : start + self.batch_size]
            vectors = embedder.embed([load_rgb(Path(crop_paths[indices[0]])) for _, indices in chunk])
            for (sha, indices), vector in zip(chunk, vectors, strict=True):
                self._store(self._path(embedder.name, sha), vector.astype(np.float32))
                result[indices] = vector
        self.last = CacheStats(hits=len(crop_hashes) - sum(len(i) for i in missing.values()), misses=len(missing))
        return result


def embedding_distances(a: np.ndarray, b: np.ndarray, metric: str) -> np.ndarray:
    """Pairwise distances (len(a), len(b)) under "euclidean" or "cosine" (1 - cosine similarity)."""
    a = np.atleast_2d(a).astype(np.float64)
    b = np.atleast_2d(b).astype(np.float64)
    if metric == "euclidean":
        squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
        return np.sqrt(np.maximum(squared, 0.0))
    if metric == "cosine":
        a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
        b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
        return np.clip(1.0 - a @ b.T, 0.0, 2.0)
    raise ValueError(f'unknown metric {metric!r}: use "euclidean" or "cosine"')
