"""Who is who: embed every kept crop, cluster into people, pick the owner, publish the result.

Glue between `embed` (vectors, cached by crop hash) and `cluster` (people, owner choice) that the
`identity_clusters` stage calls; usable as is from a notebook.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facecraft_pipeline.faces.cluster import ClusterSettings, IdentityClusters, cluster_identities
from facecraft_pipeline.faces.crops_manifest import CropsManifest, FaceRecord
from facecraft_pipeline.faces.embed import Embedder, EmbeddingCache
from facecraft_pipeline.faces.probe import ProbeSpec


@dataclass(frozen=True, eq=False)
class OwnerIdentity:
    """Kept faces (in embedding order), their clusters, and the owner's vectors and centroid.

    `probe` is how a later stage finds and embeds a face comparably: the detector that found these
    faces and the embedder that made these vectors (`faces.probe.IdentityProbe(identity.probe)`).
    """

    faces: tuple[FaceRecord, ...]
    embeddings: np.ndarray
    clusters: IdentityClusters
    embedder: str
    reference_count: int
    cache_hits: int
    cache_misses: int
    probe: ProbeSpec = ProbeSpec()

    @property
    def owner_faces(self) -> tuple[FaceRecord, ...]:
        return tuple(self.faces[i] for i in self.clusters.owner_indices())

    @property
    def owner_centroid(self) -> np.ndarray | None:
        owner = self.clusters.owner
        return None if owner is None else owner.centroid

    @property
    def digest(self) -> str:
        """Changes when the crops, their grouping or the owner choice change."""
        lines = [f"embedder {self.embedder}", f"owner {self.clusters.owner_label}"]
        lines += sorted(f"{face.crop_sha256} {label}" for face, label in zip(self.faces, self.clusters.labels.tolist()))
        return hashlib.sha256("\n".join(lines).encode()).hexdigest()

    def save(self, path: Path) -> Path:
        """Vectors, labels and crop hashes as one .npz (for notebooks and later stages)."""
        np.savez_compressed(
            path,
            embeddings=self.embeddings,
            labels=self.clusters.labels,
            owner_distances=self.clusters.owner_distances,
            crop_sha256=np.array([face.crop_sha256 or "" for face in self.faces]),
        )
        return path


def reference_vectors(manifest: CropsManifest, embedder: Embedder, cache: EmbeddingCache) -> np.ndarray:
    """One vector per reference photo: its best-scoring kept face (the owner is alone in them)."""
    best: dict[str, FaceRecord] = {}
    for face in manifest.kept_faces:
        if face.photo_sha256 not in best or face.score > best[face.photo_sha256].score:
            best[face.photo_sha256] = face
    faces = list(best.values())
    if not faces:
        return np.zeros((0, embedder.dim), np.float32)
    return cache.embed_files(embedder, [f.crop_path for f in faces], [f.crop_sha256 for f in faces])  # type: ignore[misc]


def identify_owner(
    manifest: CropsManifest,
    embedder: Embedder,
    cache: EmbeddingCache,
    settings: ClusterSettings = ClusterSettings(),
    references: np.ndarray | None = None,
    probe: ProbeSpec = ProbeSpec(),
) -> OwnerIdentity:
    """Cluster the manifest's kept faces; the owner is nearest `references`, else the largest group.

    `probe` names the detector that found the faces and the settings `embedder` was made from (recorded).
    """
    faces: Sequence[FaceRecord] = manifest.kept_faces
    vectors = cache.embed_files(embedder, [f.crop_path for f in faces], [f.crop_sha256 for f in faces])  # type: ignore[misc]
    hits, misses = cache.last.hits, cache.last.misses
    clusters = cluster_identities(vectors, settings, references if references is not None and len(references) else None)
    return OwnerIdentity(
        faces=tuple(faces),
        embeddings=vectors,
        clusters=clusters,
        embedder=embedder.name,
        reference_count=0 if references is None else len(references),
        cache_hits=hits,
        cache_misses=misses,
        probe=probe,
    )
