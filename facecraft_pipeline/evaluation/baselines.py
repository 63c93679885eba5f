"""What a score means: the same measurement on real photos, with the same embedder.

- owner vs owner (the ceiling): each held-out photo of the owner (the curated dataset's val split)
  against the owner's training photos, best match kept. A generator cannot be expected to look more
  like the owner than the owner's own unseen photos do.
- other people vs owner (the floor): every face of the non-owner clusters against the held-out
  owner photos, exactly as a generated face is scored. A generator at this level draws "a face",
  not the owner.

The vectors are the ones `identity_clusters` computed (same embedder, same crops), picked by the
crop hashes the dataset manifest lists, so nothing is re-embedded and the split is the dataset's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from facecraft_pipeline.dataset.curate import CuratedDataset
from facecraft_pipeline.dataset.manifest import read_manifest
from facecraft_pipeline.evaluation.scores import Reference, embedder_label
from facecraft_pipeline.faces.identity import OwnerIdentity


@dataclass(frozen=True, eq=False)
class OwnerPhotos:
    """Identity vectors of the owner's held-out and training photos, and of everybody else."""

    held_out: np.ndarray
    train: np.ndarray
    others: np.ndarray
    embedder: str
    metric: str
    same_person_distance: float

    def reference(self) -> Reference:
        """What generated faces are compared with: the held-out photos (never the training ones)."""
        return Reference(self.held_out, self.metric, self.same_person_distance, self.embedder,
                         f"{len(self.held_out)} held-out photos of the owner (curated dataset val split)")


def owner_photos(identity: OwnerIdentity, dataset: CuratedDataset, same_person_distance: float) -> OwnerPhotos:
    """Split identity_clusters' vectors by the dataset manifest: val / train owner crops, non-owner clusters."""
    by_hash = {face.crop_sha256: i for i, face in enumerate(identity.faces) if face.crop_sha256}
    split: dict[str, list[int]] = {"val": [], "train": []}
    for record in read_manifest(dataset.folder)["images"]:
        if record.get("origin", "owner") == "owner" and record.get("crop_sha256") in by_hash:
            split[record["split"]].append(by_hash[record["crop_sha256"]])
    labels = identity.clusters.labels
    owner = identity.clusters.owner_label
    others = [i for i, label in enumerate(labels.tolist()) if label >= 0 and label != owner]
    vectors = identity.embeddings
    dim = vectors.shape[1] if vectors.ndim == 2 else 0
    pick = lambda idx: vectors[idx] if idx else np.zeros((0, dim), np.float32)  # noqa: E731
    return OwnerPhotos(pick(split["val"]), pick(split["train"]), pick(others), identity.embedder,
                       identity.clusters.metric, same_person_distance)


@dataclass(frozen=True)
class Baseline:
    """One reference measurement: `count` real faces scored like generated ones."""

    name: str
    description: str
    count: int
    identity_mean: float | None = None
    identity_min: float | None = None
    identity_max: float | None = None
    centroid_mean: float | None = None
    same_person_share: float | None = None


def _baseline(name: str, description: str, vectors: np.ndarray, reference: Reference | None) -> Baseline:
    if reference is None or len(vectors) == 0:
        return Baseline(name, description + (" (none available)" if len(vectors) == 0 else " (no reference photos)"), len(vectors))
    compared = reference.compare(vectors)
    best = compared["best"]
    return Baseline(name, description, len(vectors), float(best.mean()), float(best.min()), float(best.max()),
                    float(compared["centroid"].mean()), float(compared["same"].mean()))


@dataclass(frozen=True)
class Baselines:
    owner: Baseline  # held-out owner photos vs training photos: the ceiling
    others: Baseline  # other people vs the held-out owner photos: the floor
    embedder: str

    def relative(self, identity: float | None) -> float | None:
        """Where a score sits between the floor (0) and the ceiling (1); None without both."""
        low, high = self.others.identity_mean, self.owner.identity_mean
        if identity is None or low is None or high is None or high - low <= 1e-9:
            return None
        return (identity - low) / (high - low)

    def as_dict(self) -> dict:
        return {"owner": asdict(self.owner), "others": asdict(self.others), "embedder": self.embedder}

    @classmethod
    def from_dict(cls, data: dict) -> Baselines:
        return cls(Baseline(**data["owner"]), Baseline(**data["others"]), data["embedder"])


def compute_baselines(photos: OwnerPhotos) -> Baselines:
    """The ceiling from held-out vs training photos, the floor from other people vs held-out photos."""
    train = Reference(photos.train, photos.metric, photos.same_person_distance, photos.embedder) if len(photos.train) else None
    held_out = photos.reference() if len(photos.held_out) else None
    owner = _baseline("owner vs owner", "held-out owner photos (val split) vs the owner's training photos: the ceiling",
                      photos.held_out, train)
    others = _baseline("other people vs owner", "faces of the non-owner clusters vs the held-out owner photos: the floor",
                       photos.others, held_out)
    return Baselines(owner, others, embedder_label(photos.embedder))
