"""How much generated faces look like the owner, measured per image and summed up per checkpoint.

Per image: find, align and embed the face with the pipeline's one identity probe (`faces.probe`: its
detector and embedder, small GAN images upscaled first), then compare it with every
held-out real photo of the owner and keep the best match (the earlier project's method), plus the
similarity to the held-out photos' centroid. Similarities are cosine (1 = same direction) for every
embedder so numbers line up with the baselines; "same person" uses the embedder's own rule (dlib:
Euclidean < 0.6) against the best-matching photo. Images where no face is found are counted, never
scored zero: a checkpoint's identity numbers cover its faces, its `face_share` says how many it drew.

Cosine similarity on dlib's 128-d vectors is high for everyone (Hopper vs the astronaut: 0.89), so a
score means something only next to the baselines (see `baselines.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
from PIL import Image

from facecraft_pipeline.faces.embed import embedding_distances
from facecraft_pipeline.faces.probe import DETECT_SIDE, IdentityProbe

SCORE_VERSION = 1  # bump when the scoring maths changes: cached scores are then recomputed


def embedder_label(embedder_name: str) -> str:
    """The name a score table shows: dlib-128 or ArcFace ONNX, with the exact model id."""
    if embedder_name.startswith("dlib"):
        return f"dlib-128 ({embedder_name})"
    if embedder_name.startswith("onnx"):
        return f"ArcFace ONNX ({embedder_name})"
    return embedder_name


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) cosine similarities."""
    return 1.0 - embedding_distances(a, b, "cosine")


def best_match(vectors: np.ndarray, references: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each vector, the highest cosine similarity to any reference and that reference's index."""
    similarity = cosine_similarity(vectors, references)
    best = similarity.argmax(axis=1)
    return similarity[np.arange(len(vectors)), best], best


@dataclass(frozen=True, eq=False)
class Reference:
    """The real photos a generated face is compared with (the owner's held-out photos), as vectors."""

    vectors: np.ndarray
    metric: str  # the embedder's metric, for the same-person rule
    same_person_distance: float
    embedder: str  # the embedder's name: vectors of another embedder are not comparable
    description: str = "held-out photos of the owner"

    def __post_init__(self) -> None:
        if len(self.vectors) == 0:
            raise ValueError("a reference needs at least one photo vector")

    @property
    def centroid(self) -> np.ndarray:
        vectors = self.vectors.astype(np.float64)
        if self.metric == "cosine":
            vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors.mean(axis=0)

    def compare(self, vectors: np.ndarray) -> dict[str, np.ndarray]:
        """best (cosine), best_index, centroid (cosine), distance (embedder metric, to the best match), same (bool)."""
        best, index = best_match(vectors, self.vectors)
        distance = embedding_distances(vectors, self.vectors, self.metric).min(axis=1)
        centroid = cosine_similarity(vectors, self.centroid[None])[:, 0]
        return {"best": best, "best_index": index, "centroid": centroid, "distance": distance,
                "same": distance < self.same_person_distance}


@dataclass(frozen=True)
class ImageScore:
    """One generated image: how many faces, and how the best-scoring one compares with the owner."""

    prompt: int | None  # index into the prompts (None for GANs)
    index: int  # image number within its prompt: its seed is settings.seed + index
    faces: int
    best_match: float | None = None  # cosine similarity to the closest held-out owner photo
    best_match_photo: int | None = None  # which held-out photo that was
    centroid: float | None = None  # cosine similarity to the held-out photos' centroid
    distance: float | None = None  # embedder-metric distance to the closest held-out photo
    same_person: bool = False  # distance below the embedder's same-person threshold


def score_images(
    images: Sequence[Image.Image],
    probe: IdentityProbe,
    reference: Reference,
    detect_side: int = DETECT_SIDE,
    prompts: Sequence[int | None] | None = None,
    indices: Sequence[int] | None = None,
) -> tuple[list[ImageScore], np.ndarray]:
    """One `ImageScore` per image, and the (faces, dim) vectors of the faces found (in image order).

    `prompts` / `indices` label each image (default: no prompt, 0..n-1).
    """
    if probe.name != reference.embedder:
        raise ValueError(f"embedder {probe.name} is not the one the reference was embedded with ({reference.embedder})")
    prompts = list(prompts) if prompts is not None else [None] * len(images)
    indices = list(indices) if indices is not None else list(range(len(images)))
    probed = probe.probe(images, detect_side)
    owners = [number for number, image in enumerate(probed) if image.vector is not None]
    vectors = np.stack([probed[n].vector for n in owners]) if owners else np.zeros((0, probe.embedder.dim), np.float32)
    compared = reference.compare(vectors) if owners else {}
    scores = [ImageScore(prompt=prompts[i], index=indices[i], faces=probed[i].faces) for i in range(len(images))]
    for row, number in enumerate(owners):
        scores[number] = ImageScore(
            prompt=prompts[number], index=indices[number], faces=probed[number].faces,
            best_match=float(compared["best"][row]), best_match_photo=int(compared["best_index"][row]),
            centroid=float(compared["centroid"][row]), distance=float(compared["distance"][row]),
            same_person=bool(compared["same"][row]),
        )
    return scores, np.asarray(vectors, np.float32)


def diversity(vectors: np.ndarray, metric: str) -> float | None:
    """Mean pairwise distance (embedder metric) between the generated faces; None below two faces.

    A model that draws the same face every time scores ~0 however much that face looks like the owner.
    """
    if len(vectors) < 2:
        return None
    distances = embedding_distances(vectors, vectors, metric)
    upper = np.triu_indices(len(vectors), k=1)
    return float(distances[upper].mean())


@dataclass(frozen=True)
class CheckpointScore:
    """One row of the score table: one kept checkpoint of one model."""

    model: str  # gan, wgan_gp, lora
    step: int
    digest: str  # of the weights (and, for LoRA, the base model): the cache key with the settings
    kind: str  # "gan" | "diffusion"
    embedder: str  # e.g. "dlib-128 (dlib-resnet-v1.arcface-chip-v1)"
    images: int
    faces: int  # images with at least one face
    face_share: float
    identity_mean: float | None = None  # best-match cosine similarity to the held-out owner photos, over faces
    identity_min: float | None = None
    identity_max: float | None = None
    centroid_mean: float | None = None  # cosine similarity to the held-out photos' centroid, over faces
    same_person_share: float = 0.0  # images (all of them) whose face the embedder calls the owner
    diversity: float | None = None  # mean pairwise embedding distance of the faces (embedder metric)
    one_face_share: float = 0.0  # images with exactly one face
    prompt_following: float | None = None  # diffusion: share of prompts whose every image has exactly one face
    checkpoint: str = ""  # the file that was scored

    @property
    def name(self) -> str:
        return f"{self.model}@{self.step}"

    def as_row(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> CheckpointScore:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in row.items() if k in names})

    def as_metrics(self) -> dict[str, float]:
        """MLflow metrics (logged against the step): numbers only, absent ones left out."""
        values = {"identity": self.identity_mean, "identity_min": self.identity_min, "identity_max": self.identity_max,
                  "centroid": self.centroid_mean, "face_share": self.face_share, "same_person_share": self.same_person_share,
                  "diversity": self.diversity, "one_face_share": self.one_face_share, "prompt_following": self.prompt_following}
        return {f"{self.model}_{k}": float(v) for k, v in values.items() if v is not None}


def summarize(model: str, step: int, digest: str, kind: str, embedder: str, metric: str, images: Sequence[ImageScore],
              vectors: np.ndarray, checkpoint: str = "") -> CheckpointScore:
    """The checkpoint's row from its images' scores and its faces' vectors."""
    with_face = [s for s in images if s.best_match is not None]
    n = len(images)
    best = np.array([s.best_match for s in with_face], np.float64)
    prompt_following = None
    if kind == "diffusion":
        groups: dict[int | None, list[ImageScore]] = {}
        for s in images:
            groups.setdefault(s.prompt, []).append(s)
        prompt_following = sum(all(s.faces == 1 for s in g) for g in groups.values()) / max(len(groups), 1)
    return CheckpointScore(
        model=model, step=step, digest=digest, kind=kind, embedder=embedder_label(embedder), images=n,
        faces=len(with_face), face_share=len(with_face) / n if n else 0.0,
        identity_mean=float(best.mean()) if len(best) else None,
        identity_min=float(best.min()) if len(best) else None,
        identity_max=float(best.max()) if len(best) else None,
        centroid_mean=float(np.mean([s.centroid for s in with_face])) if with_face else None,
        same_person_share=sum(s.same_person for s in images) / n if n else 0.0,
        diversity=diversity(vectors, metric),
        one_face_share=sum(s.faces == 1 for s in images) / n if n else 0.0,
        prompt_following=prompt_following,
        checkpoint=checkpoint,
    )
