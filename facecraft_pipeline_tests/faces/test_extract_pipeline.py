"""extract_faces: a messy photo library in, every photo accounted for, aligned crops out, re-runs incremental."""

from __future__ import annotations

import dataclasses
import shutil
import typing
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from facecraft_pipeline.faces.crops_manifest import CropsManifest
from facecraft_pipeline.faces.detect import DetectorSettings
from facecraft_pipeline.faces.extract import FaceCropSettings, PhotoInput, extract_faces
from facecraft_pipeline.faces.quality import QualitySettings
from facecraft_pipeline.settings import help_text, to_dict
from facecraft_pipeline.sources.base import sha256_file
from facecraft_pipeline_tests.faces.face_samples import (
    astronaut,
    coffee,
    grace_hopper,
    png_header_only,
    save,
    side_by_side,
    stored_for_orientation,
)

SETTINGS = FaceCropSettings(detector=DetectorSettings(workers=2, batch_size=4))

# photo id -> (status, reason, faces found, faces kept)
EXPECTED = {
    "grace.jpg": ("processed", "", 1, 1),
    "grace_copy.jpg": ("processed", "", 1, 1),
    "astronaut.png": ("processed", "", 1, 1),
    "two_people.jpg": ("processed", "", 2, 2),
    "blurred.jpg": ("processed", "", 1, 0),
    "coffee.jpg": ("skipped", "no-face", 0, 0),
    "tiny.png": ("skipped", "too-small", 0, 0),
    "empty.jpg": ("failed", "empty-file", 0, 0),
    "truncated.jpg": ("failed", "truncated", 0, 0),
    "notes.jpg": ("failed", "not-an-image", 0, 0),
    "bomb.png": ("failed", "too-many-pixels", 0, 0),
    "vanished.jpg": ("failed", "missing-file", 0, 0),
    "cmyk.jpg": ("processed", "", 1, 1),
    "grey16.png": ("processed", "", 1, 1),
    "rgba.png": ("processed", "", 1, 1),
    "palette.png": ("processed", "", 1, 1),
    "grey.jpg": ("processed", "", 1, 1),
    "exif6.jpg": ("processed", "", 1, 1),
    "exif8.jpg": ("processed", "", 1, 1),
    "photo.heic": ("processed", "", 1, 1),
    "huge.jpg": ("processed", "", 1, 1),
}
HUGE_SCALE, HUGE_OFFSET = 6, (2000, 200)


def _library(folder: Path) -> list[PhotoInput]:
    """One file of every kind a real library holds."""
    folder.mkdir(parents=True, exist_ok=True)
    g, a = np.asarray(grace_hopper()), np.asarray(astronaut())
    grey = cv2.cvtColor(g, cv2.COLOR_RGB2GRAY)
    save(g, folder / "grace.jpg", quality=92)
    shutil.copy(folder / "grace.jpg", folder / "grace_copy.jpg")  # same bytes, another id
    save(a, folder / "astronaut.png")
    save(side_by_side(g, a), folder / "two_people.jpg", quality=92)
    save(cv2.GaussianBlur(g, (0, 0), 5), folder / "blurred.jpg", quality=92)
    save(np.asarray(coffee()), folder / "coffee.jpg")
    save(g[:50, :50], folder / "tiny.png")
    (folder / "empty.jpg").write_bytes(b"")
    full = (folder / "grace.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(full[: len(full) // 2])
    (folder / "notes.jpg").write_text("not a photo\n" * 50)
    png_header_only(folder / "bomb.png", 12_000, 9_000)
    Image.fromarray(g).convert("CMYK").save(folder / "cmyk.jpg", quality=92)
    Image.fromarray(grey.astype(np.uint16) * 257).save(folder / "grey16.png")
    Image.fromarray(np.dstack([g, np.full(grey.shape, 255, np.uint8)]), "RGBA").save(folder / "rgba.png")
    Image.fromarray(g).quantize(256).save(folder / "palette.png")
    save(grey, folder / "grey.jpg", quality=92)
    for orientation in (6, 8):
        save(stored_for_orientation(g, orientation), folder / f"exif{orientation}.jpg", exif_orientation=orientation, quality=92)
    save(g, folder / "photo.heic", quality=90)
    huge = np.full((4000, 6000, 3), 90, dtype=np.uint8)
    x, y = HUGE_OFFSET
    huge[y : y + 600 * HUGE_SCALE, x : x + 512 * HUGE_SCALE] = cv2.resize(g, (512 * HUGE_SCALE, 600 * HUGE_SCALE), interpolation=cv2.INTER_CUBIC)
    save(huge, folder / "huge.jpg", quality=85)
    photos = [PhotoInput(path.name, path, sha256_file(path)) for path in sorted(folder.iterdir())]
    return photos + [PhotoInput("vanished.jpg", folder / "vanished.jpg", "0" * 64)]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[PhotoInput], Path, CropsManifest, list[tuple[int, int]]]:
    root = tmp_path_factory.mktemp("extract")
    photos = _library(root / "photos")
    progress: list[tuple[int, int]] = []
    manifest = extract_faces(photos, root / "out", SETTINGS, on_progress=lambda done, total: progress.append((done, total)))
    return photos, root / "out", manifest, progress


def _by_id(manifest: CropsManifest) -> dict[str, tuple[str, str, int, int]]:
    return {p.photo_id: (p.status, p.reason, p.faces, p.kept) for p in manifest.photos}


def _face(manifest: CropsManifest, photo_id: str, index: int = 0):  # noqa: ANN202
    return next(f for f in manifest.faces if f.photo_id == photo_id and f.index == index)


def test_every_photo_is_recorded_with_its_outcome(run) -> None:  # noqa: ANN001
    photos, _, manifest, _ = run
    assert [p.photo_id for p in manifest.photos] == [p.photo_id for p in photos]  # input order, none lost
    assert _by_id(manifest) == EXPECTED
    counts = manifest.counts
    assert counts["photos"] == len(EXPECTED) and counts["from_cache"] == 0
    assert (counts["processed"], counts["skipped"], counts["failed"]) == (14, 2, 5)
    assert (counts["faces"], counts["kept"]) == (15, 14)
    assert manifest.reasons == {
        "blurry": 1, "empty-file": 1, "missing-file": 1, "no-face": 1, "not-an-image": 1, "too-many-pixels": 1, "too-small": 1, "truncated": 1,
    }  # fmt: skip
    failed = {p.photo_id: p.detail for p in manifest.photos if p.status == "failed"}
    assert all(failed.values())  # a human-readable message for every failure


def test_rejected_faces_keep_their_measures_and_reason_but_no_crop(run) -> None:  # noqa: ANN001
    face = _face(run[2], "blurred.jpg")
    assert not face.kept and face.reason == "blurry" and face.crop_path is None
    assert face.sharpness < SETTINGS.quality.min_sharpness and face.face_px > 100


def test_kept_crops_are_content_named_pngs_of_the_crop_size(run) -> None:  # noqa: ANN001
    _, out, manifest, _ = run
    for face in manifest.kept_faces:
        assert face.crop_path is not None and face.crop_path.parent == (out / "crops" / SETTINGS.cache_key).resolve()
        assert face.crop_path.name == f"{face.photo_sha256}_{face.index}.png"
        assert sha256_file(face.crop_path) == face.crop_sha256
        with Image.open(face.crop_path) as crop:
            assert crop.size == (128, 128) and crop.mode == "RGB"


def _crop(face) -> np.ndarray:  # noqa: ANN001
    return cv2.resize(np.asarray(Image.open(face.crop_path)), (32, 32), interpolation=cv2.INTER_AREA).astype(float)


def test_exif_rotated_and_converted_photos_give_the_same_upright_crop(run) -> None:  # noqa: ANN001
    manifest = run[2]
    reference = _crop(_face(manifest, "grace.jpg"))
    assert np.abs(_crop(_face(manifest, "astronaut.png")) - reference).mean() > 40  # another face is far
    for photo_id in ("exif6.jpg", "exif8.jpg", "photo.heic", "cmyk.jpg", "rgba.png", "palette.png", "huge.jpg"):
        assert np.abs(_crop(_face(manifest, photo_id)) - reference).mean() < 20, photo_id
    face = _face(manifest, "exif6.jpg")
    assert (face.box[2] <= 512) and (max(face.box) <= 600)  # in upright (512 wide, 600 high) coordinates


def test_huge_photo_is_found_with_full_size_coordinates(run) -> None:  # noqa: ANN001
    manifest = run[2]
    small, huge = _face(manifest, "grace.jpg"), _face(manifest, "huge.jpg")
    expected = (np.array(small.landmarks) + 0.5) * HUGE_SCALE - 0.5 + np.array(HUGE_OFFSET)
    eye_distance = np.linalg.norm(np.subtract(huge.landmarks[1], huge.landmarks[0]))
    assert np.linalg.norm(np.array(huge.landmarks) - expected, axis=1).max() < 0.06 * eye_distance
    assert huge.face_px == pytest.approx(small.face_px * HUGE_SCALE, rel=0.06)
    assert next(p for p in manifest.photos if p.photo_id == "huge.jpg").width == 6000


def test_two_people_give_two_crops_with_distinct_names(run) -> None:  # noqa: ANN001
    faces = [f for f in run[2].faces if f.photo_id == "two_people.jpg"]
    assert [f.index for f in faces] == [0, 1] and len({f.crop_path for f in faces}) == 2


def test_progress_is_reported_up_to_the_number_of_distinct_photos(run) -> None:  # noqa: ANN001
    photos, _, _, progress = run
    distinct = len({p.sha256 for p in photos})
    assert progress[0] == (0, distinct) and progress[-1] == (distinct, distinct)
    assert [done for done, _ in progress] == sorted(done for done, _ in progress)


def test_manifest_round_trips_through_json_and_its_digest_ignores_ids(run, tmp_path: Path) -> None:  # noqa: ANN001
    manifest = run[2]
    manifest.write_json(tmp_path / "manifest.json")
    again = CropsManifest.read_json(tmp_path / "manifest.json")
    assert again == manifest and again.digest == manifest.digest
    renamed = dataclasses.replace(manifest, photos=tuple(dataclasses.replace(p, photo_id="x" + p.photo_id) for p in manifest.photos))
    assert renamed.digest == manifest.digest
    one_less = dataclasses.replace(manifest, faces=manifest.faces[1:])
    assert one_less.digest != manifest.digest


def test_rows_cover_every_face_and_every_photo_without_one(run) -> None:  # noqa: ANN001
    manifest = run[2]
    rows = manifest.to_rows()
    assert len(rows) == len(manifest.faces) + sum(p.faces == 0 for p in manifest.photos)
    assert {row["photo_id"] for row in rows} == set(EXPECTED)
    assert {"photo_id", "status", "face", "kept", "reason", "score", "face_px", "crop"} <= set(rows[0])
    assert manifest.row_count == len(rows)
    assert manifest.to_rows(limit=5) == rows[:5] and manifest.to_rows(limit=len(rows) + 9) == rows  # the table's head, for metadata


def test_second_run_computes_nothing_and_one_new_photo_computes_one(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    photos = []
    for name, image in [("a.jpg", grace_hopper()), ("b.png", astronaut()), ("c.jpg", coffee())]:
        photos.append(PhotoInput(name, save(np.asarray(image), folder / name), sha256_file(folder / name)))
    first = extract_faces(photos, tmp_path / "out", SETTINGS)
    second = extract_faces(photos, tmp_path / "out", SETTINGS)
    assert (first.counts["computed"], second.counts["computed"], second.counts["from_cache"]) == (3, 0, 3)
    assert second.digest == first.digest and second.faces == first.faces

    new = folder / "d.jpg"
    save(np.fliplr(np.asarray(grace_hopper())), new)
    third = extract_faces([*photos, PhotoInput("d.jpg", new, sha256_file(new))], tmp_path / "out", SETTINGS)
    assert (third.counts["computed"], third.counts["from_cache"], third.counts["kept"]) == (1, 3, 3)
    assert third.digest != second.digest

    speed_only = dataclasses.replace(SETTINGS, detector=DetectorSettings(batch_size=1, workers=1, retinaface_download=False))
    assert extract_faces(photos, tmp_path / "out", speed_only).counts["computed"] == 0
    bigger = extract_faces(photos, tmp_path / "out", dataclasses.replace(SETTINGS, crop_size=160))
    assert bigger.counts["computed"] == 3 and bigger.settings_key != first.settings_key

    first.kept_faces[0].crop_path.unlink()  # a crop deleted behind our back: that photo is redone
    redone = extract_faces(photos, tmp_path / "out", SETTINGS)
    assert redone.counts["computed"] == 1 and redone.digest == first.digest


def test_settings_nest_the_detector_and_quality_settings_each_field_declared_once() -> None:
    """Asset config is generated from the fields: leaves are int/float/str/bool or `X | None`, each with help."""
    allowed = {int, float, str, bool, int | None, float | None, str | None, bool | None}
    hints = typing.get_type_hints(FaceCropSettings)
    assert hints["detector"] is DetectorSettings and hints["quality"] is QualitySettings
    for cls in (FaceCropSettings, DetectorSettings, QualitySettings):
        for f in dataclasses.fields(cls):
            assert help_text(cls, f.name), f"{cls.__name__}.{f.name} has no help"
            assert dataclasses.is_dataclass(typing.get_type_hints(cls)[f.name]) or typing.get_type_hints(cls)[f.name] in allowed
    names = [f.name for cls in (FaceCropSettings, DetectorSettings, QualitySettings) for f in dataclasses.fields(cls)]
    assert sorted({n for n in names if names.count(n) > 1}) == ["min_score"]  # the detector's floor and the quality rule: two settings
    stored = to_dict(FaceCropSettings(crop_size=96, detector=DetectorSettings(kind="retinaface", upsample=0), quality=QualitySettings(min_face_px=77)))
    assert FaceCropSettings.from_stored(stored) == FaceCropSettings(crop_size=96, detector=DetectorSettings(kind="retinaface", upsample=0),
                                                                    quality=QualitySettings(min_face_px=77))  # fmt: skip
    legacy = {"crop_size": 96, "detector": "retinaface", "dlib_model": "cnn", "detector_min_score": 0.9, "workers": 1, "min_face_px": 77, "eyes_in_box": False}
    assert FaceCropSettings.from_stored(legacy) == FaceCropSettings(
        crop_size=96, detector=DetectorSettings(kind="retinaface", dlib_model="cnn", min_score=0.9, workers=1),
        quality=QualitySettings(min_face_px=77, eyes_in_box=False),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: DetectorSettings(kind="mtcnn"), "DetectorSettings.kind"),
        (lambda: QualitySettings(min_sharpness=-1), "QualitySettings.min_sharpness"),
        (lambda: FaceCropSettings(crop_size=8), "FaceCropSettings.crop_size"),
        (lambda: FaceCropSettings(detector=DetectorSettings(batch_size=0)), "DetectorSettings.batch_size"),
    ],
)
def test_a_bad_value_is_refused_naming_the_field(build, field) -> None:
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        build()


def test_a_photo_missing_on_disk_is_retried_on_the_next_run(tmp_path: Path) -> None:
    path = save(np.asarray(coffee()), tmp_path / "late.jpg")
    photo = PhotoInput("late.jpg", path, sha256_file(path))
    content = path.read_bytes()
    path.unlink()
    first = extract_faces([photo], tmp_path / "out", SETTINGS)
    assert (first.photos[0].status, first.photos[0].reason) == ("failed", "missing-file")
    path.write_bytes(content)
    second = extract_faces([photo], tmp_path / "out", SETTINGS)
    assert (second.photos[0].status, second.photos[0].reason, second.counts["computed"]) == ("skipped", "no-face", 1)


def test_cache_keys_are_those_of_before_the_settings_were_nested() -> None:
    """Crops cached under the flat settings are still found (keys computed with the flat FaceCropSettings)."""
    assert FaceCropSettings().cache_key == "f87bc08b75ae79c3"
    assert FaceCropSettings(crop_size=512, detector=DetectorSettings(kind="retinaface")).cache_key == "6984e433b0e6e3bc"
    nested = FaceCropSettings(detector=DetectorSettings(upsample=0, min_score=0.6), quality=QualitySettings(min_score=0.5))
    assert nested.cache_key == "489ea9c912d946c5"


def test_cache_key_follows_the_effective_detector_floor() -> None:
    """An explicit floor equal to the default shares the cache; any other floor (or a new default) does not."""
    assert FaceCropSettings(detector=DetectorSettings(min_score=DetectorSettings().score_floor)).cache_key == FaceCropSettings().cache_key
    assert FaceCropSettings(detector=DetectorSettings(min_score=DetectorSettings().score_floor + 0.1)).cache_key != FaceCropSettings().cache_key
