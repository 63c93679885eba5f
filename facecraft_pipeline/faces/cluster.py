"""Group face embeddings into identities and decide which identity is the library's owner.

The owner is the person the generator will learn, so the choice must be explainable: it comes
from reference photos when the user gives some (nearest cluster, within a distance cap), else it
is the largest cluster; either way the result records how clear the choice was (`owner_margin`)
and which owner crops sit suspiciously far from the owner's centre (contamination).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from facecraft_pipeline.faces.embed import embedding_distances
from facecraft_pipeline.settings import setting, validate

METHODS = ("agglomerative", "dbscan", "hdbscan")
METRICS = ("euclidean", "cosine")
NOISE = -1


@dataclass(frozen=True)
class ClusterSettings:
    """How crops are grouped into people. Defaults suit dlib's 128-d vectors (Euclidean).

    `threshold`: the distance scale of one person. agglomerative: average-linkage cut (groups
    merge while their mean pairwise distance is below it); dbscan: eps; hdbscan: clusters closer
    than it are not split further. 0.5 sits below dlib's same-person rule (0.6), the value
    dlib's own face-clustering example uses. All distances here are in `metric`'s units: for
    ArcFace ONNX vectors use metric "cosine" and about 0.5-0.6 for every distance field.
    agglomerative needs O(N^2) memory and time (2000 crops: seconds); for tens of thousands of
    crops prefer dbscan or hdbscan.
    `min_cluster_size`: smaller groups are noise (label -1).
    `owner_reference_max_distance`: with reference photos, the owner cluster's centre must lie
    this close to their mean vector, else no owner is chosen.
    `min_owner_crops`: only clusters at least this big may be the owner.
    `contamination_distance`: owner crops farther than this from the owner centre are reported.
    """

    method: str = setting("agglomerative", "clustering: agglomerative (average linkage), dbscan or hdbscan", choices=METHODS)
    metric: str = setting("euclidean", "embedding distance: euclidean (dlib) or cosine (ArcFace ONNX)", choices=METRICS)
    threshold: float = setting(0.5, "distance scale of one person (agglomerative cut, dbscan eps, hdbscan epsilon)", minimum=0, exclusive=True)
    min_cluster_size: int = setting(2, "smaller groups are noise (label -1)", minimum=1)
    owner_reference_max_distance: float = setting(0.6, "with reference photos, the owner cluster's centre must lie this close to them", minimum=0)
    min_owner_crops: int = setting(3, "only clusters at least this big may be the owner", minimum=1)
    contamination_distance: float = setting(0.6, "owner crops farther than this from the owner centre are reported", minimum=0)

    def __post_init__(self) -> None:
        validate(self)


@dataclass(frozen=True, eq=False)
class ClusterInfo:
    label: int
    size: int
    centroid: np.ndarray = field(repr=False)  # robust mean: see `_robust_centre`
    max_distance: float  # farthest member from the centroid
    mean_distance: float
    reference_distance: float | None = None  # centroid to the mean reference vector, when given


@dataclass(frozen=True, eq=False)
class IdentityClusters:
    """Cluster labels per crop (-1 = noise), one `ClusterInfo` per cluster, and the owner choice.

    Labels are 0, 1, ... by decreasing cluster size. `owner_rule` is "reference photos" or
    "largest cluster". `owner_margin` says how clear the choice was: with references, the next
    candidate's distance to them minus the owner's (bigger is clearer); without, the owner's size
    divided by the runner-up's (1.0 is a tie). None when there was no other candidate.
    `owner_label` None means no owner was found; `no_owner_reason` says why.
    """

    labels: np.ndarray
    clusters: tuple[ClusterInfo, ...]
    owner_label: int | None
    owner_rule: str
    owner_margin: float | None
    owner_distances: np.ndarray  # per crop, to the owner centroid (NaN without an owner)
    metric: str
    contamination_distance: float
    no_owner_reason: str | None = None

    @property
    def owner(self) -> ClusterInfo | None:
        return next((c for c in self.clusters if c.label == self.owner_label), None)

    def owner_indices(self) -> np.ndarray:
        """Indices of the crops in the owner cluster (empty without an owner)."""
        if self.owner_label is None:
            return np.zeros(0, dtype=np.int64)
        return np.flatnonzero(self.labels == self.owner_label)

    def contamination(self, threshold: float | None = None) -> list[int]:
        """Owner crops farther than `threshold` (default `contamination_distance`) from the
        owner centroid, farthest first: likely other people merged into the owner."""
        limit = self.contamination_distance if threshold is None else threshold
        members = self.owner_indices()
        far = members[self.owner_distances[members] > limit]
        return [int(i) for i in far[np.argsort(-self.owner_distances[far], kind="stable")]]

    def is_contaminated(self, threshold: float | None = None) -> bool:
        return bool(self.contamination(threshold))

    def name_of(self, label: int) -> str:
        """Display name of a label: "owner", "noise" or "cluster-<label>"."""
        return sheet_name(label, self.owner_label)

    def to_rows(self) -> list[dict[str, Any]]:
        """One row per cluster (owner first, noise last) for a table in the UI."""
        rows: list[dict[str, Any]] = []
        for info in sorted(self.clusters, key=lambda c: (c.label != self.owner_label, c.label)):
            rows.append(
                {
                    "name": self.name_of(info.label),
                    "label": info.label,
                    "size": info.size,
                    "max_distance_to_centroid": round(info.max_distance, 4),
                    "mean_distance_to_centroid": round(info.mean_distance, 4),
                    "distance_to_references": None
                    if info.reference_distance is None
                    else round(info.reference_distance, 4),
                    "is_owner": info.label == self.owner_label,
                }
            )
        noise = int((self.labels == NOISE).sum())
        if noise:
            rows.append(
                {
                    "name": "noise",
                    "label": NOISE,
                    "size": noise,
                    "max_distance_to_centroid": None,
                    "mean_distance_to_centroid": None,
                    "distance_to_references": None,
                    "is_owner": False,
                }
            )
        return rows


def sheet_name(label: int, owner_label: int | None) -> str:
    if label == NOISE:
        return "noise"
    return "owner" if label == owner_label else f"cluster-{label}"


def _raw_labels(embeddings: np.ndarray, settings: ClusterSettings) -> np.ndarray:
    from sklearn.cluster import DBSCAN, HDBSCAN, AgglomerativeClustering

    if settings.method == "agglomerative":
        model = AgglomerativeClustering(
            n_clusters=None, distance_threshold=settings.threshold, metric=settings.metric, linkage="average"
        )
        return model.fit_predict(embeddings)
    if settings.method == "dbscan":
        return DBSCAN(
            eps=settings.threshold, min_samples=settings.min_cluster_size, metric=settings.metric
        ).fit_predict(embeddings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        model = HDBSCAN(
            min_cluster_size=max(2, settings.min_cluster_size),
            cluster_selection_epsilon=settings.threshold,
            metric=settings.metric,
            copy=True,
        )
        return model.fit_predict(embeddings)


def _relabel_by_size(raw: np.ndarray, min_size: int) -> np.ndarray:
    """0 = largest cluster; clusters below `min_size` become noise. Ties go by first member."""
    labels = np.full(len(raw), NOISE, dtype=np.int64)
    groups = [np.flatnonzero(raw == value) for value in np.unique(raw[raw != NOISE])]
    groups = sorted((g for g in groups if len(g) >= min_size), key=lambda g: (-len(g), g[0]))
    for new_label, members in enumerate(groups):
        labels[members] = new_label
    return labels


def _centre(vectors: np.ndarray, metric: str) -> np.ndarray:
    """Mean vector (for cosine: of the unit vectors, renormalised)."""
    if metric == "cosine":
        vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        mean = vectors.mean(0)
        return mean / max(float(np.linalg.norm(mean)), 1e-12)
    return vectors.mean(0)


def _robust_centre(vectors: np.ndarray, metric: str, radius: float) -> np.ndarray:
    """Mean of the members within `radius` of their coordinate-wise median.

    A few strangers chained into a cluster then do not drag its centre toward themselves,
    which would hide them from the contamination check.
    """
    median = np.median(vectors, axis=0)
    if metric == "cosine":
        median = _centre(median[None], metric)
    core = vectors[embedding_distances(vectors, median[None], metric)[:, 0] <= radius]
    return _centre(core if len(core) else vectors, metric)


def _check(embeddings: np.ndarray, settings: ClusterSettings) -> None:
    if settings.method not in METHODS:
        raise ValueError(f"unknown clustering method {settings.method!r}: use one of {METHODS}")
    if settings.metric not in METRICS:
        raise ValueError(f"unknown metric {settings.metric!r}: use one of {METRICS}")
    if embeddings.ndim != 2:
        raise ValueError(f"embeddings must be (N, dim), got shape {embeddings.shape}")


def cluster_identities(
    embeddings: np.ndarray,
    settings: ClusterSettings = ClusterSettings(),
    reference_embeddings: np.ndarray | None = None,
) -> IdentityClusters:
    """Cluster the crops' identity vectors and choose the owner (see `IdentityClusters`)."""
    embeddings = np.asarray(embeddings, dtype=np.float64)
    _check(embeddings, settings)
    n = len(embeddings)
    raw = _raw_labels(embeddings, settings) if n >= 2 else np.full(n, NOISE)
    labels = _relabel_by_size(raw, settings.min_cluster_size)
    reference = None
    if reference_embeddings is not None and len(reference_embeddings):
        reference = _centre(np.atleast_2d(np.asarray(reference_embeddings, dtype=np.float64)), settings.metric)

    clusters = []
    for label in range(int(labels.max(initial=NOISE)) + 1):
        members = embeddings[labels == label]
        centroid = _robust_centre(members, settings.metric, settings.contamination_distance)
        spread = embedding_distances(members, centroid[None], settings.metric)[:, 0]
        to_ref = (
            None
            if reference is None
            else float(embedding_distances(centroid[None], reference[None], settings.metric)[0, 0])
        )
        clusters.append(ClusterInfo(label, len(members), centroid, float(spread.max()), float(spread.mean()), to_ref))

    owner_label, margin, reason, rule = _choose_owner(clusters, settings, reference is not None)
    if owner_label is None:
        distances = np.full(n, np.nan)
    else:
        distances = embedding_distances(embeddings, clusters[owner_label].centroid[None], settings.metric)[:, 0]
    return IdentityClusters(
        labels=labels,
        clusters=tuple(clusters),
        owner_label=owner_label,
        owner_rule=rule,
        owner_margin=margin,
        owner_distances=distances,
        metric=settings.metric,
        contamination_distance=settings.contamination_distance,
        no_owner_reason=reason,
    )


def _choose_owner(
    clusters: list[ClusterInfo], settings: ClusterSettings, with_references: bool
) -> tuple[int | None, float | None, str | None, str]:
    """(owner label, margin, reason when none, rule)."""
    rule = "reference photos" if with_references else "largest cluster"
    candidates = [c for c in clusters if c.size >= settings.min_owner_crops]
    if not candidates:
        biggest = max((c.size for c in clusters), default=0)
        return None, None, f"no cluster has {settings.min_owner_crops} crops or more (largest: {biggest})", rule
    if with_references:
        ranked = sorted(candidates, key=lambda c: (c.reference_distance, c.label))
        best = ranked[0]
        assert best.reference_distance is not None
        margin = None if len(ranked) == 1 else float(ranked[1].reference_distance - best.reference_distance)  # type: ignore[operator]
        if best.reference_distance > settings.owner_reference_max_distance:
            reason = (
                f"nearest cluster ({best.label}, {best.size} crops) is {best.reference_distance:.3f} from the "
                f"reference photos, more than owner_reference_max_distance {settings.owner_reference_max_distance}"
            )
            return None, margin, reason, rule
        return best.label, margin, None, rule
    ranked = sorted(candidates, key=lambda c: (-c.size, c.label))
    margin = None if len(ranked) == 1 else ranked[0].size / ranked[1].size
    return ranked[0].label, margin, None, rule
