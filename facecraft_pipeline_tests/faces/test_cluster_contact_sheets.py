"""One contact sheet per cluster, named for a person to read: owner, cluster-N, noise."""

from __future__ import annotations

from pathlib import Path

from facecraft_pipeline.faces.contact_sheet import contact_sheets
from facecraft_pipeline_tests.faces.identity_fixtures import VARIATIONS, identity_crops, save_png


def _crop_paths(tmp_path: Path) -> list[Path]:
    crops = identity_crops()
    return [save_png(crops[p][v], tmp_path / f"{p}-{v}.png") for p in ("grace", "astronaut") for v in VARIATIONS]


def test_one_sheet_per_cluster_with_the_owner_first_and_noise_last(tmp_path: Path) -> None:
    labels = [1] * 8 + [0] * 7 + [-1]
    sheets = contact_sheets(_crop_paths(tmp_path), labels, owner_label=1)
    assert list(sheets) == ["owner", "cluster-0", "noise"]
    cell, pad = 96, 2
    assert sheets["owner"].size == (3 * (cell + pad) + pad,) * 2  # 8 crops -> 3x3 grid
    assert sheets["noise"].size == (cell + 2 * pad,) * 2


def test_sheets_show_at_most_max_per_cluster_crops(tmp_path: Path) -> None:
    sheets = contact_sheets(_crop_paths(tmp_path), [0] * 16, owner_label=0, max_per_cluster=4)
    assert sheets["owner"].size == (2 * 98 + 2,) * 2  # 4 crops -> 2x2 grid


def test_without_an_owner_every_cluster_keeps_its_number(tmp_path: Path) -> None:
    sheets = contact_sheets(_crop_paths(tmp_path), [0] * 8 + [1] * 8, owner_label=None)
    assert list(sheets) == ["cluster-0", "cluster-1"]
