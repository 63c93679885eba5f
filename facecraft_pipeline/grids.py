"""Contact sheets and sample grids: one helper so every stage's previews look alike."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image


def make_grid(images: Sequence[Image.Image | np.ndarray | Path], cols: int | None = None, cell: int = 96, pad: int = 2) -> Image.Image:
    """Tile images (PIL, HxWx3 uint8 arrays or image files) into one RGB sheet, each resized to `cell` px square."""
    if not images:
        raise ValueError("make_grid needs at least one image")
    cols = cols or math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    sheet = Image.new("RGB", (cols * (cell + pad) + pad, rows * (cell + pad) + pad), (32, 32, 32))
    for index, image in enumerate(images):
        if isinstance(image, (str, Path)):
            with Image.open(image) as opened:
                tile = opened.convert("RGB")
        else:
            tile = Image.fromarray(image) if isinstance(image, np.ndarray) else image
        tile = tile.convert("RGB").resize((cell, cell), Image.Resampling.LANCZOS)
        row, col = divmod(index, cols)
        sheet.paste(tile, (pad + col * (cell + pad), pad + row * (cell + pad)))
    return sheet
