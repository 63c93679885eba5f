"""Near-duplicate detection: a DCT perceptual hash, and a greedy keep-the-best pass.

Libraries are full of bursts, edits and re-saves of one moment. Left in, they inflate the owner
set, over-weight one look in training, and leak between train and val.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy.fft import dctn


def phash(image: Image.Image | np.ndarray) -> int:
    """64-bit perceptual hash (the classic pHash, as in the `imagehash` package).

    Grey 32x32, 2-D DCT, the 8x8 lowest frequencies, each bit = coefficient above their median.
    Robust to resizing, brightness, JPEG; sensitive to mirroring and content changes.
    """
    pil = Image.fromarray(image) if isinstance(image, np.ndarray) else image
    grey = np.asarray(pil.convert("L").resize((32, 32), Image.Resampling.LANCZOS), dtype=np.float64)
    low = dctn(grey, type=2)[:8, :8]
    bits = (low > np.median(low)).ravel()
    return int(sum(1 << i for i, bit in enumerate(bits) if bit))


def hamming_matrix(hashes: Sequence[int], rows_per_block: int = 1024) -> np.ndarray:
    """(N, N) uint8 numbers of differing bits between 64-bit hashes (built in row blocks, so
    10k crops need 100 MB, not the 800 MB of a full uint64 XOR table)."""
    values = np.asarray(hashes, dtype=np.uint64)
    out = np.empty((len(values), len(values)), dtype=np.uint8)
    for start in range(0, len(values), rows_per_block):
        block = values[start : start + rows_per_block]
        out[start : start + len(block)] = np.bitwise_count(block[:, None] ^ values[None, :])
    return out


@dataclass(frozen=True)
class Duplicate:
    index: int  # the item dropped
    kept: int  # the item it duplicates
    distance: float  # hash bits or embedding distance between them


def greedy_duplicates(distances: np.ndarray, order: Sequence[int], threshold: float) -> list[Duplicate]:
    """Walk items in preference `order`; an item within `threshold` of an already kept item is a
    duplicate of the nearest such item. Kept items never chain: A~B~C keeps A and C if they differ.
    """
    kept: list[int] = []
    found: list[Duplicate] = []
    for index in order:
        if kept:
            near = distances[index, kept]
            best = int(np.argmin(near))
            if near[best] <= threshold:
                found.append(Duplicate(index=index, kept=kept[best], distance=float(near[best])))
                continue
        kept.append(index)
    return found
