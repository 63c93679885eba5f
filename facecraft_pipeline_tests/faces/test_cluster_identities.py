"""Clustering separates people, picks the owner explainably, and flags a contaminated owner."""

from __future__ import annotations

import numpy as np
import pytest

from facecraft_pipeline.faces.cluster import ClusterSettings, cluster_identities
from facecraft_pipeline_tests.faces.identity_fixtures import dlib_embedder, identity_crops, identity_embeddings


def _library(grace: int = 8, astronaut: int = 8) -> np.ndarray:
    """Grace's first `grace` variations, then the astronaut's first `astronaut`."""
    vectors = identity_embeddings()
    return np.concatenate([vectors["grace"][:grace], vectors["astronaut"][:astronaut]])


@pytest.mark.parametrize("method", ["agglomerative", "dbscan", "hdbscan"])
def test_each_person_gets_exactly_one_cluster_of_their_own(method: str) -> None:
    result = cluster_identities(_library(), ClusterSettings(method=method))
    grace, astronaut = result.labels[:8], result.labels[8:]
    assert len(set(grace)) == 1 and len(set(astronaut)) == 1
    assert grace[0] != astronaut[0] and -1 not in (grace[0], astronaut[0])
    assert sorted(c.size for c in result.clusters) == [8, 8]


def test_cosine_metric_separates_them_too_with_a_cosine_scale_threshold() -> None:
    result = cluster_identities(_library(), ClusterSettings(metric="cosine", threshold=0.05))
    assert len(set(result.labels[:8])) == 1 and len(set(result.labels[8:])) == 1
    assert result.labels[0] != result.labels[8]


def test_without_references_the_largest_cluster_is_the_owner_and_the_size_ratio_is_the_margin() -> None:
    result = cluster_identities(_library(grace=8, astronaut=5))
    assert result.owner_rule == "largest cluster"
    assert list(result.owner_indices()) == list(range(8))
    assert result.owner_margin == pytest.approx(8 / 5)
    assert result.no_owner_reason is None


def test_reference_photos_choose_the_owner_even_when_it_is_the_smaller_cluster() -> None:
    references = dlib_embedder().embed([identity_crops(160)["astronaut"][v] for v in ("original", "dark")])
    result = cluster_identities(_library(grace=8, astronaut=5), reference_embeddings=references)
    assert result.owner_rule == "reference photos"
    assert list(result.owner_indices()) == list(range(8, 13))
    assert result.owner is not None and result.owner.reference_distance is not None
    assert result.owner.reference_distance < 0.3
    assert result.owner_margin is not None and result.owner_margin > 0.3  # grace's cluster is far from the references


def test_references_that_match_no_cluster_give_no_owner_and_say_why() -> None:
    references = dlib_embedder().embed([identity_crops(160)["grace"]["original"]])
    result = cluster_identities(_library(grace=0, astronaut=8), reference_embeddings=references)
    assert result.owner_label is None
    assert result.no_owner_reason is not None and "owner_reference_max_distance" in result.no_owner_reason
    assert len(result.owner_indices()) == 0
    assert np.isnan(result.owner_distances).all()


def test_clusters_smaller_than_min_owner_crops_cannot_be_the_owner() -> None:
    result = cluster_identities(_library(grace=2, astronaut=2), ClusterSettings(min_owner_crops=3))
    assert result.owner_label is None
    assert result.no_owner_reason is not None and "3 crops" in result.no_owner_reason


def test_a_lone_crop_is_noise_and_listed_last_in_the_table() -> None:
    library = np.concatenate([_library(grace=8, astronaut=0), identity_embeddings()["astronaut"][:1]])
    result = cluster_identities(library)
    assert result.labels[-1] == -1
    rows = result.to_rows()
    assert [r["name"] for r in rows] == ["owner", "noise"]
    assert rows[0]["size"] == 8 and rows[0]["is_owner"] and rows[1]["size"] == 1


def test_a_stranger_chained_into_the_owner_cluster_is_reported_as_contamination() -> None:
    owner = _library(grace=8, astronaut=0)
    centre = owner.mean(0)
    direction = np.random.default_rng(0).standard_normal(centre.shape)
    direction /= np.linalg.norm(direction)
    # A path of look-alikes: each step within DBSCAN's eps of the last, ending far from the owner.
    chain = np.stack([centre + direction * step for step in (0.35, 0.7, 1.05)])
    result = cluster_identities(np.concatenate([owner, chain]), ClusterSettings(method="dbscan"))
    assert set(result.owner_indices()) == set(range(11))  # DBSCAN let the chain in
    assert result.is_contaminated()
    assert result.contamination() == [10, 9]  # farther than 0.6 from the owner centre, farthest first
    assert result.contamination(threshold=1.5) == []


def test_a_clean_owner_cluster_is_not_contaminated() -> None:
    result = cluster_identities(_library())
    assert not result.is_contaminated()
    assert np.nanmax(result.owner_distances[result.owner_indices()]) < 0.3


def test_unknown_method_or_metric_is_an_error() -> None:
    with pytest.raises(ValueError, match="method"):
        cluster_identities(_library(), ClusterSettings(method="kmeans"))
    with pytest.raises(ValueError, match="metric"):
        cluster_identities(_library(), ClusterSettings(metric="manhattan"))
