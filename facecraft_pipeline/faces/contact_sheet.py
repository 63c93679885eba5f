"""One contact sheet per identity cluster, so a person can check the owner choice at a glance."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from facecraft_pipeline.faces.cluster import NOISE, sheet_name
from facecraft_pipeline.grids import make_grid


def contact_sheets(
    crop_paths: Sequence[Path | str],
    labels: Sequence[int] | np.ndarray,
    owner_label: int | None,
    max_per_cluster: int = 24,
    cell: int = 96,
) -> dict[str, Image.Image]:
    """{"owner": sheet, "cluster-1": sheet, ..., "noise": sheet}: owner first, noise last.

    Each sheet shows up to `max_per_cluster` crops of that cluster, in input order.
    """
    labels = np.asarray(labels)
    if len(labels) != len(crop_paths):
        raise ValueError(f"{len(crop_paths)} crops but {len(labels)} labels")
    order = sorted(set(labels.tolist()), key=lambda label: (label == NOISE, label != owner_label, label))
    sheets: dict[str, Image.Image] = {}
    for label in order:
        members = np.flatnonzero(labels == label)[:max_per_cluster]
        images = []
        for index in members:
            with Image.open(crop_paths[index]) as image:
                images.append(image.convert("RGB"))
        sheets[sheet_name(int(label), owner_label)] = make_grid(images, cell=cell)
    return sheets
