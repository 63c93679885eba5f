"""The dataset folder is named by its content digest and never changes once published."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from facecraft_pipeline.dataset.curate import CurateSettings, curate_dataset
from facecraft_pipeline_tests.dataset.items import distinct_image, distinct_items, item
from facecraft_pipeline_tests.faces.identity_fixtures import save_png


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()
    }


def test_the_same_inputs_give_the_same_digest_and_the_folder_is_reused_untouched(tmp_path: Path) -> None:
    items = distinct_items(tmp_path, 8)
    first = curate_dataset(items, tmp_path / "d")
    before = _snapshot(first.folder)
    second = curate_dataset(items, tmp_path / "d")
    assert (second.digest, second.folder) == (first.digest, first.folder)
    assert not first.reused and second.reused
    assert _snapshot(second.folder) == before
    assert first.folder.name == first.digest[:16]
    assert json.loads(first.manifest_path.read_text())["digest"] == first.digest
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == [first.folder.name]  # no staging left


def test_published_files_are_read_only(tmp_path: Path) -> None:
    dataset = curate_dataset(distinct_items(tmp_path, 3), tmp_path / "d")
    for path in [dataset.manifest_path, *dataset.train_paths]:
        assert path.stat().st_mode & 0o222 == 0


def test_changed_pixels_give_a_new_version_beside_the_old_one(tmp_path: Path) -> None:
    items = distinct_items(tmp_path, 6)
    first = curate_dataset(items, tmp_path / "d")
    edited = save_png(distinct_image(99), tmp_path / "edited.png")
    second = curate_dataset([*items[:-1], item(edited, items[-1].photo_id)], tmp_path / "d")
    assert second.digest != first.digest
    assert first.folder.exists() and second.folder.exists()


@pytest.mark.parametrize("change", ["identity_distance", "resolution", "seed"])
def test_changed_lineage_or_settings_change_the_digest(tmp_path: Path, change: str) -> None:
    items = distinct_items(tmp_path, 6, size=128)
    base = curate_dataset(items, tmp_path / "d")
    if change == "identity_distance":
        changed_items = [*items[:-1], item(items[-1].crop_path, items[-1].photo_id, identity_distance=0.3)]
        other = curate_dataset(changed_items, tmp_path / "d")
    else:
        settings = CurateSettings(resolution=96) if change == "resolution" else CurateSettings(seed=7)
        other = curate_dataset(items, tmp_path / "d", settings)
    assert other.digest != base.digest


def test_a_folder_holding_another_dataset_is_never_overwritten(tmp_path: Path) -> None:
    items = distinct_items(tmp_path, 4)
    dataset = curate_dataset(items, tmp_path / "d")
    manifest = json.loads(dataset.manifest_path.read_text())
    dataset.manifest_path.chmod(0o644)
    dataset.manifest_path.write_text(json.dumps(dict(manifest, digest="0" * 64)))
    with pytest.raises(RuntimeError, match="refusing to overwrite"):
        curate_dataset(items, tmp_path / "d")
