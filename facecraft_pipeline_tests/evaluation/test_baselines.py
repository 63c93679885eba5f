"""Baselines: the owner's held-out photos against the training photos (ceiling), other people against the
held-out photos (floor), both from identity_clusters' vectors split by the real curated dataset."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from facecraft_pipeline.dataset.curate import CurateSettings, CurationItem, curate_dataset
from facecraft_pipeline.dataset.manifest import read_manifest
from facecraft_pipeline.evaluation import compute_baselines, owner_photos
from facecraft_pipeline.evaluation.baselines import OwnerPhotos
from facecraft_pipeline.evaluation.scores import best_match, cosine_similarity
from facecraft_pipeline.faces.cluster import ClusterSettings, cluster_identities
from facecraft_pipeline.faces.crops_manifest import FaceRecord
from facecraft_pipeline.faces.identity import OwnerIdentity
from facecraft_pipeline.sources.base import sha256_file
from facecraft_pipeline_tests.faces.identity_fixtures import PEOPLE, VARIATIONS, dlib_embedder, identity_crops, identity_embeddings, save_png


@pytest.fixture(scope="module")
def identity_and_dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("crops")
    crops, vectors = identity_crops(), identity_embeddings()
    faces, rows = [], []
    for person in PEOPLE:
        for number, variation in enumerate(VARIATIONS):
            path = save_png(crops[person][variation], folder / f"{person}-{variation}.png")
            photo_id = f"{person}-{variation}.jpg"
            faces.append(FaceRecord(photo_id, hashlib.sha256(photo_id.encode()).hexdigest(), 0, (0, 0, 1, 1), ((0, 0),) * 5,
                                    1.0, 112.0, 100.0, 1.0, True, "", path, sha256_file(path)))
            rows.append(vectors[person][number])
    embeddings = np.asarray(rows)
    grace = vectors["grace"].mean(0, keepdims=True)
    clusters = cluster_identities(embeddings, ClusterSettings(min_cluster_size=3), grace)
    identity = OwnerIdentity(tuple(faces), embeddings, clusters, dlib_embedder().name, 1, 0, len(faces))
    owner = [(faces[i], embeddings[i]) for i in clusters.owner_indices()]
    items = [CurationItem(f.crop_path, f.crop_sha256, f.photo_id, f.photo_sha256) for f, _ in owner]
    dataset = curate_dataset(items, tmp_path_factory.mktemp("datasets"), CurateSettings(dedup="none", val_fraction=0.4,
                                                                                          split_group_bits=0))
    return identity, dataset


def test_held_out_photos_are_the_dataset_val_split_and_other_people_are_the_non_owner_clusters(identity_and_dataset):
    identity, dataset = identity_and_dataset
    photos = owner_photos(identity, dataset, 0.6)
    records = read_manifest(dataset.folder)["images"]
    index = {f.crop_sha256: i for i, f in enumerate(identity.faces)}
    val = [index[r["crop_sha256"]] for r in records if r["split"] == "val"]
    train = [index[r["crop_sha256"]] for r in records if r["split"] == "train"]
    assert val and train and not set(val) & set(train)
    assert np.array_equal(photos.held_out, identity.embeddings[val]) and np.array_equal(photos.train, identity.embeddings[train])
    assert all(identity.faces[i].photo_id.startswith("grace") for i in val + train)
    assert len(photos.others) == len(VARIATIONS)  # the astronaut's cluster
    assert np.array_equal(photos.reference().vectors, photos.held_out)  # generated faces meet held-out photos only


def test_the_ceiling_is_held_out_vs_train_and_the_floor_other_people_vs_held_out(identity_and_dataset):
    identity, dataset = identity_and_dataset
    photos = owner_photos(identity, dataset, 0.6)
    baselines = compute_baselines(photos)
    assert baselines.owner.count == len(photos.held_out) and baselines.others.count == len(photos.others)
    assert baselines.owner.identity_mean == pytest.approx(best_match(photos.held_out, photos.train)[0].mean())
    assert baselines.others.identity_mean == pytest.approx(cosine_similarity(photos.others, photos.held_out).max(1).mean())
    # dlib's 0.6 rule is not perfect on altered crops: 1 of the astronaut's 8 falls within 0.6 of a held-out Hopper.
    assert baselines.owner.same_person_share == 1.0 and baselines.others.same_person_share <= 0.125
    assert baselines.owner.identity_mean > baselines.others.identity_mean
    # The floor never looks at training photos: replacing them leaves it as it is.
    swapped = OwnerPhotos(photos.held_out, photos.others, photos.others, photos.embedder, photos.metric, 0.6)
    assert compute_baselines(swapped).others == baselines.others
    middle = (baselines.owner.identity_mean + baselines.others.identity_mean) / 2
    assert baselines.relative(middle) == pytest.approx(0.5) and baselines.embedder.startswith("dlib-128")
