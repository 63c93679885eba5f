"""Quality while training, kept free of Dagster and of the face models.

The trainer calls a `SampleScorer` (images -> named numbers) at each sample step; the asset builds one
from the pipeline's identity probe (`faces.probe.IdentityProbe.embed`, given to `face_quality_scorer`),
so this module imports nothing heavy. KID is computed here on whatever embedding the probe gives: on
dlib's 128-d face embedding it is named `kid_dlib128`, on an ArcFace ONNX model's `kid_arcface` (it is
not FID: no Inception features).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

SampleScorer = Callable[[Sequence[Image.Image]], dict[str, float]]
# name -> True when higher is better; the first one present decides the best step
RANKING = (("kid_dlib128", False), ("kid_arcface", False), ("owner_similarity", True), ("faces_found", True))


def kid_name(embedder_name: str) -> str:
    """The suffix of the KID metric for an embedder: dlib128 for dlib's ResNet, arcface for an ArcFace ONNX model."""
    return "dlib128" if embedder_name.startswith("dlib") else "arcface"


def kid(x: np.ndarray, y: np.ndarray) -> float:
    """Kernel Inception Distance's estimator (Binkowski et al. 2018) on any features: the unbiased
    MMD^2 with the cubic polynomial kernel k(a, b) = (a.b / d + 1)^3. Needs >= 2 rows each."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if len(x) < 2 or len(y) < 2:
        raise ValueError(f"KID needs at least 2 feature rows on each side, got {len(x)} and {len(y)}")
    d = x.shape[1]
    kxx, kyy, kxy = (x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3
    m, n = len(x), len(y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2 * kxy.mean())


def face_quality_scorer(find_faces: Callable[[Sequence[Image.Image]], list[np.ndarray | None]], reference: np.ndarray,
                        owner_centroid: np.ndarray | None = None, same_person_distance: float = 0.6,
                        name: str = "dlib128") -> SampleScorer:
    """A scorer from a face finder: images -> one embedding per image (None where no face is found).

    Metrics: faces_found (share of images with a face), kid_<name> between the found faces'
    embeddings and `reference` (held-out real faces' embeddings), owner_distance (mean Euclidean
    distance to the owner's centroid) and owner_similarity (share within `same_person_distance`).
    """
    def score(images: Sequence[Image.Image]) -> dict[str, float]:
        found = [v for v in find_faces(images) if v is not None]
        out = {"faces_found": len(found) / max(len(images), 1)}
        if found:
            vectors = np.stack(found)
            if len(vectors) >= 2 and len(reference) >= 2:
                out[f"kid_{name}"] = kid(vectors, reference)
            if owner_centroid is not None:
                distance = np.linalg.norm(vectors - owner_centroid[None], axis=1)
                out["owner_distance"] = float(distance.mean())
                out["owner_similarity"] = float((distance < same_person_distance).mean())
        return out

    return score


def best_step(quality_log: Path) -> dict[str, Any] | None:
    """The step with the best score in a quality.jsonl (the last row per step wins; resumed runs rewrite)."""
    if not quality_log.exists():
        return None
    rows: dict[int, dict[str, float]] = {}
    for line in quality_log.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            rows[int(row["step"])] = row
    for name, higher in RANKING:
        scored = [(row[name], step) for step, row in rows.items() if name in row and math.isfinite(row[name])]
        if scored:
            value, step = max(scored) if higher else min(scored)
            return {"step": step, "by": name, **rows[step]}
    return None
