"""load_rgb: every file a photo library throws at us becomes upright 8-bit RGB, or a precise refusal."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from facecraft_pipeline.imaging import ImageDecodeError, load_rgb
from facecraft_pipeline_tests.faces.face_samples import grace_hopper, png_header_only, save, stored_for_orientation


def _reason(path: Path, **kwargs: int) -> str:
    with pytest.raises(ImageDecodeError) as caught:
        load_rgb(path, **kwargs)
    return caught.value.reason


def test_plain_jpeg_becomes_hxwx3_uint8(tmp_path: Path) -> None:
    rgb = load_rgb(save(grace_hopper(), tmp_path / "g.jpg", quality=95))
    assert rgb.shape == (600, 512, 3) and rgb.dtype == np.uint8
    assert np.abs(rgb.astype(int) - grace_hopper()).mean() < 3


def test_zero_byte_file_is_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.jpg").write_bytes(b"")
    assert _reason(tmp_path / "empty.jpg") == "empty-file"


def test_text_with_jpg_extension_is_not_an_image(tmp_path: Path) -> None:
    (tmp_path / "notes.jpg").write_text("these are not pixels\n" * 20)
    assert _reason(tmp_path / "notes.jpg") == "not-an-image"


def test_truncated_jpeg_is_an_error_not_a_half_grey_photo(tmp_path: Path) -> None:
    data = (save(grace_hopper(), tmp_path / "full.jpg", quality=90)).read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) * 6 // 10])
    error = pytest.raises(ImageDecodeError, load_rgb, tmp_path / "cut.jpg").value
    assert error.reason == "truncated" and "cut.jpg" in str(error)


def test_jpeg_cut_inside_its_header_is_truncated_too(tmp_path: Path) -> None:
    data = (save(grace_hopper(), tmp_path / "full.jpg", quality=90)).read_bytes()
    (tmp_path / "header_only.jpg").write_bytes(data[:100])
    assert _reason(tmp_path / "header_only.jpg") == "truncated"


def test_truncated_png_is_an_error(tmp_path: Path) -> None:
    data = save(grace_hopper(), tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    assert _reason(tmp_path / "cut.png") == "truncated"


def test_tiny_image_is_too_small(tmp_path: Path) -> None:
    save(grace_hopper()[:40, :300], tmp_path / "strip.png")
    assert _reason(tmp_path / "strip.png") == "too-small"
    assert load_rgb(tmp_path / "strip.png", min_side=32).shape == (40, 300, 3)


def test_decompression_bomb_is_refused_from_its_header(tmp_path: Path) -> None:
    # 100 M pixels: above our 80 M limit but below Pillow's own error threshold, so our check decides.
    assert _reason(png_header_only(tmp_path / "bomb.png", 10_000, 10_000)) == "too-many-pixels"
    # 900 M pixels: Pillow itself refuses on open; still reported as the same reason.
    assert _reason(png_header_only(tmp_path / "huge.png", 30_000, 30_000)) == "too-many-pixels"
    assert _reason(png_header_only(tmp_path / "small_limit.png", 2_000, 2_000), max_pixels=1_000_000) == "too-many-pixels"


def test_cmyk_jpeg_is_converted_to_rgb(tmp_path: Path) -> None:
    Image.fromarray(grace_hopper()).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    assert Image.open(tmp_path / "cmyk.jpg").mode == "CMYK"
    rgb = load_rgb(tmp_path / "cmyk.jpg")
    assert rgb.shape == (600, 512, 3)
    assert np.abs(rgb.astype(int) - grace_hopper()).mean() < 6


def test_16_bit_greyscale_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    grey8 = cv2.cvtColor(np.asarray(grace_hopper()), cv2.COLOR_RGB2GRAY)
    Image.fromarray(grey8.astype(np.uint16) * 257).save(tmp_path / "grey16.png")
    assert Image.open(tmp_path / "grey16.png").mode.startswith("I")
    rgb = load_rgb(tmp_path / "grey16.png")
    assert np.array_equal(rgb[:, :, 0], grey8) and np.array_equal(rgb[:, :, 0], rgb[:, :, 2])


def test_16_bit_colour_png_keeps_its_colours(tmp_path: Path) -> None:
    wide = np.asarray(grace_hopper()).astype(np.uint16) * 257
    cv2.imwrite(str(tmp_path / "rgb16.png"), cv2.cvtColor(wide, cv2.COLOR_RGB2BGR))
    rgb = load_rgb(tmp_path / "rgb16.png")
    assert rgb.dtype == np.uint8 and np.abs(rgb.astype(int) - grace_hopper()).max() <= 1


def test_rgba_png_is_composited_on_white(tmp_path: Path) -> None:
    rgba = np.dstack([grace_hopper(), np.full((600, 512), 255, dtype=np.uint8)])
    rgba[:, :100, 3] = 0  # fully transparent band
    rgba[:, 100:200, 3] = 128  # half transparent band
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    rgb = load_rgb(tmp_path / "alpha.png").astype(int)
    assert (rgb[:, :100] == 255).all()
    expected_half = (grace_hopper()[:, 100:200].astype(int) * 128 + 255 * 127) / 255
    assert np.abs(rgb[:, 100:200] - expected_half).max() <= 2
    assert np.array_equal(rgb[:, 200:], grace_hopper()[:, 200:])


def test_palette_png_is_expanded(tmp_path: Path) -> None:
    Image.fromarray(grace_hopper()).quantize(256).save(tmp_path / "palette.png")
    assert Image.open(tmp_path / "palette.png").mode == "P"
    rgb = load_rgb(tmp_path / "palette.png")
    assert rgb.shape == (600, 512, 3) and np.abs(rgb.astype(int) - grace_hopper()).mean() < 8


def test_palette_with_transparency_is_composited_on_white(tmp_path: Path) -> None:
    image = Image.new("P", (80, 80), 0)
    image.putpalette([255, 0, 0] + [0, 0, 255] * 255)
    image.paste(1, (40, 0, 80, 80))
    image.save(tmp_path / "transparent.png", transparency=0)
    rgb = load_rgb(tmp_path / "transparent.png")
    assert (rgb[:, :40] == 255).all() and (rgb[:, 40:] == [0, 0, 255]).all()


def test_greyscale_and_grey_with_alpha_become_three_equal_channels(tmp_path: Path) -> None:
    grey = cv2.cvtColor(np.asarray(grace_hopper()), cv2.COLOR_RGB2GRAY)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    rgb = load_rgb(tmp_path / "grey.png")
    assert np.array_equal(rgb[:, :, 0], grey) and np.array_equal(rgb[:, :, 1], grey)
    Image.fromarray(np.dstack([grey, np.full_like(grey, 255)]), "LA").save(tmp_path / "grey_alpha.png")
    assert np.array_equal(load_rgb(tmp_path / "grey_alpha.png")[:, :, 2], grey)


@pytest.mark.parametrize("orientation", [6, 8])
def test_exif_orientation_is_applied_exactly_once(tmp_path: Path, orientation: int) -> None:
    stored = stored_for_orientation(grace_hopper(), orientation)
    path = save(stored, tmp_path / f"turned{orientation}.png", exif_orientation=orientation)
    rgb = load_rgb(path)
    assert np.array_equal(rgb, grace_hopper())  # upright: turned once, not zero or two times


def test_heic_is_decoded_and_its_rotation_applied_once(tmp_path: Path) -> None:
    save(grace_hopper(), tmp_path / "photo.heic", quality=90)
    assert np.abs(load_rgb(tmp_path / "photo.heic").astype(int) - grace_hopper()).mean() < 6
    stored = stored_for_orientation(grace_hopper(), 6)
    rgb = load_rgb(save(stored, tmp_path / "turned.heic", exif_orientation=6, quality=90))
    assert rgb.shape == (600, 512, 3)
    assert np.abs(rgb.astype(int) - grace_hopper()).mean() < 6


def test_decode_error_is_a_value_error_with_the_code_in_its_message(tmp_path: Path) -> None:
    (tmp_path / "x.png").write_bytes(b"")
    with pytest.raises(ValueError, match="^empty-file: "):
        load_rgb(tmp_path / "x.png")


def test_a_string_path_is_accepted(tmp_path: Path) -> None:
    save(grace_hopper(), tmp_path / "g.png")
    assert np.array_equal(load_rgb(str(tmp_path / "g.png")), grace_hopper())  # type: ignore[arg-type]
