"""The LoRA view: head-and-shoulders crops from the original photos, never enlarged past the limit, captioned;
and the owner's drop list in the curated dataset."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from facecraft_pipeline.dataset.curate import CurateSettings, CurationItem, curate_dataset
from facecraft_pipeline.dataset.diffusion_crops import (
    DiffusionCropSettings,
    build_diffusion_view,
    caption,
    crop_window,
    mirrored,
)
from facecraft_pipeline.digest import sha256_file

BIG_FACE = [180.0, 60.0, 300.0, 190.0]  # ~130 px: a 312 px crop at context 2.4, shrunk to 256 px
SMALL_FACE = [200.0, 100.0, 240.0, 140.0]  # 40 px: a 96 px crop would be enlarged x2.67 to 256 px
LANDMARKS_LEFT = [[210.0, 110.0], [260.0, 110.0], [220.0, 140.0], [215.0, 165.0], [255.0, 165.0]]  # nose left of the eyes


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("photos")
    paths = {}
    for name, array in {"astronaut": data.astronaut(), "wide": np.concatenate([data.astronaut()] * 2, axis=1)}.items():
        path = folder / f"{name}.png"
        Image.fromarray(array).save(path)
        paths[name] = path
    (folder / "wide.txt").write_text("in a space suit\n")
    return paths


def item(photo: Path, box, photo_id: str, faces: int = 1, **extra) -> dict:
    """A curated dataset's record of one owner crop: where its photo is, how many faces it holds, where the face is."""
    return {"file": f"train/{photo_id}.png", "split": "train", "origin": "owner", "photo_id": photo_id,
            "photo_sha256": sha256_file(photo), "crop_sha256": photo_id * 8, "box": box, "landmarks": LANDMARKS_LEFT,
            "photo_path": str(photo), "photo_faces": faces, **extra}


def view(photos, tmp_path, items, settings=DiffusionCropSettings(), resolution=256):
    manifest = {"digest": "c" * 64, "images": items}
    return build_diffusion_view(manifest, tmp_path / "views", settings, resolution=resolution, trigger="sks", class_word="woman")


def test_crops_come_from_the_photo_at_the_training_size_and_small_faces_are_left_out_with_a_reason(photos, tmp_path) -> None:
    result = view(photos, tmp_path, [item(photos["astronaut"], BIG_FACE, "big"), item(photos["astronaut"], SMALL_FACE, "small")])

    assert [e.photo_id for e in result.examples] == ["big"]
    assert Image.open(result.examples[0].image).size == (256, 256)
    (photo_id, reason), = result.excluded
    assert photo_id == "small" and "enlarged x2.67" in reason and "limit x1.25" in reason
    record = json.loads(result.manifest_path.read_text())["images"][0]
    assert record["window"] == [84, 8, 312] and record["scale"] <= 1.25
    x1, y1, x2, y2 = result.examples[0].face_box  # the face box follows the crop and the resize
    assert (x1, y1) == pytest.approx(((180 - 84) * 256 / 312, (60 - 8) * 256 / 312), abs=0.01)
    assert result.examples[0].original_size == (312, 312)


def test_no_crop_is_enlarged_beyond_the_limit_whatever_the_resolution(photos, tmp_path) -> None:
    items = [item(photos["astronaut"], [100.0 + i, 80.0, 100.0 + i + side, 80.0 + side], f"f{side}") for i, side in
             enumerate((30, 60, 90, 120, 200, 400))]
    for limit in (1.0, 1.5, 3.0):
        result = view(photos, tmp_path, items, DiffusionCropSettings(max_upscale=limit), resolution=320)
        manifest = json.loads(result.manifest_path.read_text())
        assert manifest["images"] and all(r["scale"] <= limit for r in manifest["images"])
        assert len(manifest["images"]) + len(manifest["excluded"]) == len(items)
        assert all("enlarged" in r["reason"] for r in manifest["excluded"])


def test_the_crop_window_stays_inside_the_photo() -> None:
    assert crop_window([0, 0, 500, 500], 512, 512, 2.4, 0.3) == (0, 0, 512)
    assert crop_window([900, 10, 1000, 110], 1024, 600, 2.4, 0.3) == (784, 0, 240)


def test_captions_say_trigger_class_and_what_was_measured_and_take_the_caption_file(photos, tmp_path) -> None:
    result = view(photos, tmp_path, [item(photos["wide"], BIG_FACE, "w", faces=3)])
    example, = result.examples

    assert example.caption.startswith("photo of sks woman, face turned to the left")
    assert "2 other people nearby" in example.caption and example.caption.endswith("in a space suit")
    assert example.flipped_caption == example.caption.replace("to the left", "to the right")
    assert caption("photo of {trigger} {class_word}, {details}, {caption_file}", "sks", "man", []) == "photo of sks man"
    assert mirrored("left hand, right eye") == "right hand, left eye"


def test_what_cannot_be_cropped_is_said(photos, tmp_path) -> None:
    changed = item(photos["astronaut"], BIG_FACE, "changed", photo_sha256="0" * 64)
    moved = item(photos["astronaut"], BIG_FACE, "moved", photo_path=str(tmp_path / "gone.png"))
    older = item(photos["astronaut"], BIG_FACE, "older", photo_path=None)
    external = item(photos["astronaut"], BIG_FACE, "ext", origin="external")
    result = view(photos, tmp_path, [changed, moved, older, external])
    assert dict(result.excluded) == {"changed": "source photo changed since curation", "moved": "source photo not found",
                                     "ext": "not the owner (external image)", "older": "source photo not recorded (a curated "
                                     "dataset from before photo paths were kept: materialize it again)"}


def test_the_view_is_reused_for_the_same_inputs_and_changes_with_its_settings(photos, tmp_path) -> None:
    items = [item(photos["astronaut"], BIG_FACE, "big")]
    first, again = view(photos, tmp_path, items), view(photos, tmp_path, items)
    wider = view(photos, tmp_path, items, DiffusionCropSettings(context=2.8))
    assert again.reused and again.digest == first.digest and wider.digest != first.digest


def _curation_items(folder: Path) -> list[CurationItem]:
    photo = data.astronaut()
    items = []
    for i in range(4):
        path = folder / f"crop{i}.png"
        Image.fromarray(photo[40 * i:40 * i + 96, 150:246]).save(path)
        items.append(CurationItem(path, sha256_file(path), f"photo-{i}", f"{i:064x}"))
    return items


def test_dropping_a_photo_by_id_changes_the_dataset_digest_and_is_recorded(tmp_path) -> None:
    items = _curation_items(tmp_path)
    settings = CurateSettings(resolution=32, dedup="none", val_fraction=0.0)

    kept = curate_dataset(items, tmp_path / "datasets", settings)
    dropped = curate_dataset(items, tmp_path / "datasets", replace(settings, drop=("photo-1", items[2].crop_sha256[:10])))

    assert dropped.digest != kept.digest
    assert (kept.counts["images"], dropped.counts["images"], dropped.counts["excluded_dropped"]) == (4, 2, 2)
    manifest = json.loads(dropped.manifest_path.read_text())
    assert manifest["settings"]["drop"] == ["photo-1", items[2].crop_sha256[:10]]
    assert {e["photo_id"] for e in manifest["excluded"] if e["kind"] == "dropped"} == {"photo-1", "photo-2"}


def test_other_faces_reaching_into_the_crop_are_recorded_in_crop_pixels(photos, tmp_path) -> None:
    neighbour, far_away = [320.0, 80.0, 400.0, 170.0], [0.0, 450.0, 40.0, 500.0]
    result = view(photos, tmp_path, [item(photos["astronaut"], BIG_FACE, "big", faces=3,
                                          photo_boxes=[BIG_FACE, neighbour, far_away])])

    example, = result.examples
    record, = json.loads(result.manifest_path.read_text())["images"]
    left, top, side = record["window"]
    scale = 256 / side
    (x1, y1, x2, y2), = example.other_faces  # the owner's own box and the face outside the crop are not there
    assert (x1, y1) == pytest.approx(((neighbour[0] - left) * scale, (neighbour[1] - top) * scale), abs=0.01)
    assert x2 <= 256 and y2 == pytest.approx((neighbour[3] - top) * scale, abs=0.01)
    assert "2 other people nearby" in example.caption


def test_the_curated_dataset_records_where_each_photo_is_and_every_face_it_holds(tmp_path) -> None:
    boxes = ((1.0, 2.0, 11.0, 12.0), (20.0, 2.0, 30.0, 12.0))
    items = [replace(i, photo_path=f"/photos/{i.photo_id}.jpg", photo_faces=2, photo_boxes=boxes) for i in _curation_items(tmp_path)]
    dataset = curate_dataset(items, tmp_path / "datasets", CurateSettings(resolution=32, dedup="none", val_fraction=0.0))
    records = json.loads(dataset.manifest_path.read_text())["images"]
    assert sorted((r["photo_path"], r["photo_faces"], r["photo_boxes"]) for r in records) == \
        [(f"/photos/photo-{i}.jpg", 2, [list(b) for b in boxes]) for i in range(4)]
