"""Mix two latent "characters" gene by gene: every value is taken from one parent at random, seeded.

No Dagster and no torch here, so training tools, notebooks and the explorer share one definition.
The random stream is mulberry32 (a 32-bit generator small enough to write identically in
JavaScript: see `explorer/static/app.js`), so the static site in a browser mixes exactly as Python
does: the same parents and seed give the same child everywhere.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

_MASK = 0xFFFFFFFF


def _imul(a: int, b: int) -> int:
    return (a * b) & _MASK


def mulberry32(seed: int) -> Iterator[float]:
    """Uniform floats in [0, 1), the same sequence as the common JavaScript mulberry32 for `seed`."""
    state = seed & _MASK
    while True:
        state = (state + 0x6D2B79F5) & _MASK
        t = _imul(state ^ (state >> 15), state | 1)
        t = ((t + _imul(t ^ (t >> 7), t | 61)) & _MASK) ^ t
        yield ((t ^ (t >> 14)) & _MASK) / 4294967296


@dataclass(frozen=True)
class Mix:
    """The child's latent and controls, and for each gene which parent (0 = a, 1 = b) it came from."""

    latent: list[float]
    controls: list[float]
    latent_from: list[int]
    controls_from: list[int]


def mix_genes(a: Sequence[float], b: Sequence[float], seed: int, *, controls_a: Sequence[float] = (),
              controls_b: Sequence[float] = (), p_b: float = 0.5) -> Mix:
    """Child of parents a and b: latent value i is b[i] when the i-th draw is < p_b, else a[i].

    Controls (attributes such as yaw or mouth_open, if the generator has them) are drawn after the
    latent values, from the same stream. Parents must have equal lengths.
    """
    if len(a) != len(b):
        raise ValueError(f"parents have latents of different sizes ({len(a)} and {len(b)}): made by different models?")
    if len(controls_a) != len(controls_b):
        raise ValueError(f"parents have different numbers of controls ({len(controls_a)} and {len(controls_b)})")
    if not 0.0 <= p_b <= 1.0:
        raise ValueError(f"p_b must be in [0, 1], got {p_b}")
    draws = mulberry32(int(seed))
    latent_from = [int(next(draws) < p_b) for _ in a]
    controls_from = [int(next(draws) < p_b) for _ in controls_a]
    latent = [float(b[i] if pick else a[i]) for i, pick in enumerate(latent_from)]
    controls = [float(controls_b[i] if pick else controls_a[i]) for i, pick in enumerate(controls_from)]
    return Mix(latent, controls, latent_from, controls_from)
