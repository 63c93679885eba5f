"""Identity conditioning: G draws whoever's embedding it is given, and the owner when given none."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from facecraft_pipeline.gan import load_generator, train_gan
from facecraft_pipeline.gan.conditioning import IdentityCondition
from facecraft_pipeline.gan.sample import fixed_latents
from facecraft_pipeline.gan.settings import GanSettings
from facecraft_pipeline.training.images import load_images, to_float
from facecraft_pipeline_tests.gan.conftest import real_faces, tiny


@pytest.fixture(scope="module")
def two_people(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], torch.Tensor, list[int]]:
    """The demo's two people (Grace Hopper, the owner, and Eileen Collins), 6 shifted copies each, with
    two well separated identity vectors (the embedder is not what this test is about)."""
    folder = tmp_path_factory.mktemp("people")
    paths = real_faces(folder, 6, person=0) + real_faces(folder, 6, person=1)
    people = [0] * 6 + [1] * 6
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(2, 128))
    vectors = np.stack([centres[p] + 0.05 * rng.normal(size=128) for p in people]).astype(np.float32)
    return paths, torch.from_numpy(vectors), people


def conditioned(**changes) -> GanSettings:
    return tiny(condition="identity", resolution=32, batch_size=8, base_channels=16, latent_dim=32, lr_g=2e-3, lr_d=2e-3,
                diffaugment="", ema_decay=0.0, **changes)


def test_conditioned_generator_follows_its_condition_on_the_demo_people(two_people, tmp_path: Path) -> None:
    paths, vectors, people = two_people
    owner = vectors[[i for i, p in enumerate(people) if p == 0]]
    result = train_gan(paths, tmp_path, conditioned(steps=300, checkpoint_every=300, sample_every=0),
                       identity=IdentityCondition(vectors, owner))
    generator = load_generator(result.artifact("checkpoint"))
    means = [to_float(load_images([p for p, who in zip(paths, people) if who == person], 32)).mean(0) for person in (0, 1)]
    z = fixed_latents(generator, 8, seed=5)
    with torch.no_grad():
        for person in (0, 1):
            condition = vectors[[i for i, p in enumerate(people) if p == person][:1]].expand(8, -1)
            images = generator(z, None, condition)
            nearest = torch.stack([((images - m) ** 2).flatten(1).mean(1) for m in means]).argmin(0)
            assert (nearest == person).float().mean() >= 0.75, f"samples conditioned on person {person} look like {nearest.tolist()}"
        default = generator(z)  # no identity given: the owner, drawn from the owner's embeddings
        nearest = torch.stack([((default - m) ** 2).flatten(1).mean(1) for m in means]).argmin(0)
        assert (nearest == 0).float().mean() >= 0.75


def test_the_default_draw_picks_one_owner_embedding_per_latent_and_is_deterministic(two_people, tmp_path: Path) -> None:
    paths, vectors, people = two_people
    owner = vectors[:6]
    people = {"owner": vectors[:6].mean(0), "cluster-1": vectors[6:].mean(0)}
    result = train_gan(paths, tmp_path, conditioned(steps=2, checkpoint_every=2, sample_every=0),
                       identity=IdentityCondition(vectors, owner, people))
    generator = load_generator(result.artifact("checkpoint"))
    assert generator.people_names == ["owner", "cluster-1"]  # the explorer's person picker
    assert torch.equal(generator.people, torch.stack(list(people.values())))
    z = fixed_latents(generator, 64, seed=1)
    picked = generator.owner.pick(z)
    assert all(any(torch.equal(row, o) for o in owner) for row in picked)
    assert len({tuple(row.tolist()) for row in picked}) >= 4  # latents spread over the owner's photos
    assert torch.equal(generator(z), generator(z, None, picked))


def test_conditioning_needs_an_identity_per_image_and_the_owners(two_people, tmp_path: Path) -> None:
    paths, vectors, _ = two_people
    with pytest.raises(ValueError, match=r"condition='identity' needs an identity embedding per image \(12\), got 5"):
        train_gan(paths, tmp_path, conditioned(steps=2), identity=IdentityCondition(vectors[:5], vectors[:1]))
    with pytest.raises(ValueError, match=r"replay_size must be 0 with condition 'identity'"):
        GanSettings(condition="identity", tricks=GanSettings().tricks.__class__(replay_size=8))
    with pytest.raises(ValueError, match=r"GanSettings.condition must be one of \['none', 'identity'\]"):
        GanSettings(condition="person")


def test_identities_are_part_of_the_run_key(two_people, tmp_path: Path) -> None:
    paths, vectors, _ = two_people
    settings = conditioned(steps=2, checkpoint_every=2, sample_every=0)
    a = train_gan(paths, tmp_path, settings, identity=IdentityCondition(vectors, vectors[:6]))
    b = train_gan(paths, tmp_path, settings, identity=IdentityCondition(vectors.flip(0), vectors[:6]))
    assert a.key != b.key


@pytest.mark.parametrize("owner_faces", [1, 11])  # the owner ~8% or ~92% of the library's faces
def test_a_library_where_the_owner_is_a_small_or_a_large_share_trains_and_draws_from_the_owners_embeddings(
        owner_faces: int, two_people, tmp_path: Path) -> None:
    paths, vectors, _ = two_people
    rng = np.random.default_rng(1)
    centres = torch.from_numpy(rng.normal(size=(2, 128)).astype(np.float32))
    identity = torch.stack([centres[0 if i < owner_faces else 1] + 0.05 * vectors[i] for i in range(len(paths))])
    result = train_gan(paths, tmp_path, conditioned(steps=4, checkpoint_every=4, sample_every=0),
                       identity=IdentityCondition(identity, identity[:owner_faces]))
    generator = load_generator(result.artifact("checkpoint"))
    assert result.steps == 4 and len(generator.owner.pick(fixed_latents(generator, 8, seed=0))) == 8
    assert torch.isfinite(generator(fixed_latents(generator, 4, seed=0))).all()
