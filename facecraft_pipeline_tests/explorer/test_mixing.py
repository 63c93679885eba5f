from __future__ import annotations

import pytest

from facecraft_pipeline.gan.mixing import mix_genes, mulberry32


def test_mulberry32_is_the_reference_stream():
    # Reference values of the JavaScript mulberry32 (the browser test checks the page's copy too).
    draws = mulberry32(1)
    first = [next(draws) for _ in range(3)]
    assert first == pytest.approx([0.6270739405881613, 0.002735721180215478, 0.5274470399599522], abs=1e-15)
    assert all(0 <= v < 1 for v in first)


def test_mix_takes_each_gene_from_one_parent_reproducibly():
    a, b = [float(i) for i in range(64)], [float(-i - 1) for i in range(64)]
    one, two = mix_genes(a, b, seed=7), mix_genes(a, b, seed=7)
    assert one == two
    assert all(v == (b[i] if src else a[i]) for i, (v, src) in enumerate(zip(one.latent, one.latent_from, strict=True)))
    assert 10 < sum(one.latent_from) < 54  # both parents contribute
    assert one.latent != a and one.latent != b
    assert mix_genes(a, b, seed=8).latent != one.latent


def test_mix_controls_and_bias():
    a, b = [0.0] * 16, [1.0] * 16
    mixed = mix_genes(a, b, 3, controls_a=[-1.0, -1.0], controls_b=[1.0, 1.0])
    assert len(mixed.controls) == 2 and set(mixed.controls) <= {-1.0, 1.0}
    assert mix_genes(a, b, 3, p_b=1.0).latent == b
    assert mix_genes(a, b, 3, p_b=0.0).latent == a


@pytest.mark.parametrize("kwargs, message", [
    ({"a": [0.0] * 3, "b": [0.0] * 4}, "different sizes"),
    ({"a": [0.0], "b": [0.0], "controls_a": [0.0]}, "different numbers of controls"),
    ({"a": [0.0], "b": [0.0], "p_b": 2.0}, "p_b"),
])
def test_mix_rejects_mismatched_parents(kwargs, message):
    with pytest.raises(ValueError, match=message):
        mix_genes(seed=0, **kwargs)
