from __future__ import annotations

import numpy as np
import torch

from facecraft_pipeline.explorer.directions import activations, feature_layer, find_directions
from facecraft_pipeline.gan import GanSettings, build_generator, load_generator
from facecraft_pipeline_tests.explorer.controlled import ControlledGenerator

SMALL = GanSettings(resolution=32, latent_dim=32, base_channels=8, arch="dcgan", spectral_norm=False, minibatch_std=False)


def test_feature_layer_is_the_generators_choice_else_the_first_feature_map(checkpoint):
    generator = build_generator(SMALL).eval()
    name, module = feature_layer(generator)  # the GAN names its first block
    assert name == "blocks.8" and module is generator.blocks["8"]
    wrapped = ControlledGenerator(SMALL).eval()  # declares nothing: the first map larger than 1x1, not the reshaped z
    assert feature_layer(wrapped, len(wrapped.control_names))[0] == "inner.stem.1"
    modern = load_generator(checkpoint)  # the default architecture
    seen = []
    _, layer = feature_layer(modern)
    handle = layer.register_forward_hook(lambda m, i, out: seen.append(tuple(out.shape)))
    modern(torch.zeros(1, modern.latent_dim))
    handle.remove()
    assert len(seen) == 1 and len(seen[0]) == 4 and seen[0][-1] > 1


def test_directions_follow_the_early_layers_principal_axes(checkpoint):
    generator = load_generator(checkpoint)
    d = find_directions(generator, n_components=6, n_samples=1024, seed=0)
    assert d.vectors.shape == (6, generator.latent_dim)
    assert np.all(np.diff(d.variance_ratio) <= 1e-7) and d.variance_ratio[0] > 0
    # Moving one slider unit along direction k moves the layer ~one std along PCA axis k, and much less
    # along the other axes; a random latent step of the same length does not single out axis k.
    _, module = feature_layer(generator)
    z = torch.randn(256, generator.latent_dim, generator=torch.Generator().manual_seed(1))
    base = activations(generator, module, z).numpy()
    for k in range(3):
        moved = activations(generator, module, z + torch.from_numpy(d.vectors[k])).numpy()
        shift = (moved - base) @ d.components.T / d.std  # in std units per axis
        assert 0.6 < shift[:, k].mean() < 1.4, shift[:, k].mean()
        others = np.abs(np.delete(shift.mean(0), k))
        assert others.max() < 0.35, others
        rng = np.random.default_rng(k)
        step = rng.standard_normal(generator.latent_dim).astype(np.float32)
        step *= np.linalg.norm(d.vectors[k]) / np.linalg.norm(step)
        random_shift = (activations(generator, module, z + torch.from_numpy(step)).numpy() - base) @ d.components.T / d.std
        assert abs(random_shift[:, k].mean()) < shift[:, k].mean()


def test_directions_are_deterministic_and_work_with_controls():
    generator = ControlledGenerator(SMALL).eval()
    one = find_directions(generator, 4, 256, seed=3)
    two = find_directions(generator, 4, 256, seed=3)
    np.testing.assert_array_equal(one.vectors, two.vectors)
    assert one.layer == "inner.stem.1"
    plain = build_generator(SMALL).eval()
    assert find_directions(plain, 4, 256).vectors.shape == (4, 32)
