"""Decode one photo into an upright 8-bit RGB array, or say precisely why not.

A photo library holds whatever phones, scanners and editors wrote: CMYK or 16-bit files,
transparency, palettes, HEIC, sideways pixels with an EXIF Orientation tag, files cut short by a
failed download, and the occasional non-image with a `.jpg` name. Everything downstream assumes
HxWx3 uint8 RGB that is the right way up, so this is the one place that makes it so -- and the
one place that refuses, with a short reason code the manifest can count.
"""

from __future__ import annotations

import io
import struct
import warnings
from pathlib import Path

import numpy as np
import pillow_heif
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

pillow_heif.register_heif_opener()  # HEIC/HEIF through Pillow; libheif applies its own rotation.

_SRGB = ImageCms.createProfile("sRGB")


class ImageDecodeError(ValueError):
    """A photo that cannot become pixels; `reason` is a short code for counting and filtering.

    Codes: "empty-file", "not-an-image", "truncated", "too-many-pixels", "too-small", "unsupported".
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


def load_rgb(path: Path, max_pixels: int = 80_000_000, min_side: int = 64) -> np.ndarray:
    """HxWx3 uint8 RGB, upright (EXIF orientation applied once), or `ImageDecodeError`.

    The size checks read only the header, so a decompression bomb is refused before its pixels
    are decoded. Truncated files are an error rather than a half-grey picture (this relies on
    Pillow's default `ImageFile.LOAD_TRUNCATED_IMAGES = False`; nothing in FaceCraft changes it).
    """
    path = Path(path)
    if path.stat().st_size == 0:
        raise ImageDecodeError("empty-file", f"{path.name} has no bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except UnidentifiedImageError as error:
        raise ImageDecodeError("not-an-image", f"{path.name} is not an image Pillow can read") from error
    except Image.DecompressionBombError as error:
        raise ImageDecodeError("too-many-pixels", str(error)) from error
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise  # the file system's problem, not the photo's
    except (OSError, SyntaxError, EOFError) as error:  # a recognised format whose header is cut short
        raise ImageDecodeError("truncated", f"{path.name}: {error}") from error
    except (ValueError, TypeError, struct.error) as error:  # a header Pillow cannot make sense of
        raise ImageDecodeError("not-an-image", f"{path.name}: {error}") from error
    with image:
        width, height = image.size
        if width * height > max_pixels:
            raise ImageDecodeError("too-many-pixels", f"{width}x{height} is over {max_pixels} pixels")
        if min(width, height) < min_side:
            raise ImageDecodeError("too-small", f"{width}x{height} has a side under {min_side} px")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                image.load()
                rgb = _to_rgb(_upright(image))
        except ImageDecodeError:
            raise
        except (OSError, SyntaxError, EOFError) as error:
            raise ImageDecodeError("truncated", f"{path.name}: {error}") from error
        except (ValueError, TypeError, KeyError) as error:
            raise ImageDecodeError("unsupported", f"{path.name} ({image.mode}): {error}") from error
    return np.ascontiguousarray(rgb)


def _upright(image: Image.Image) -> Image.Image:
    """EXIF orientation applied; a corrupt EXIF block leaves the pixels as stored rather than losing the photo."""
    try:
        return ImageOps.exif_transpose(image)
    except (ValueError, TypeError, KeyError, SyntaxError, struct.error, OSError):
        return image


def _to_rgb(image: Image.Image) -> np.ndarray:
    """Any Pillow mode to 8-bit sRGB; alpha is composited on white (transparent = paper)."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return _wide_grey_to_rgb(image)
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode in ("PA", "LA", "La", "RGBa"):
        image = image.convert("RGBA")
    elif mode == "CMYK" or ("icc_profile" in image.info and mode in ("RGB", "RGBA", "L")):
        image = _icc_to_srgb(image)
    if image.mode == "RGBA":
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, image)
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.uint8)


def _wide_grey_to_rgb(image: Image.Image) -> np.ndarray:
    """16/32-bit greyscale scaled (not clipped, as Pillow's convert does) to 0..255."""
    values = np.asarray(image).astype(np.float64)
    if image.mode == "F":
        top = 1.0 if values.size and np.nanmax(values) <= 1.0 else 255.0
    else:
        top = 65535.0 if values.size and values.max() > 255 else 255.0
    grey = np.clip(np.nan_to_num(values) * (255.0 / top) + 0.5, 0, 255).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def _icc_to_srgb(image: Image.Image) -> Image.Image:
    """Colour-manage through the embedded ICC profile when there is one; else Pillow's plain convert."""
    icc = image.info.get("icc_profile")
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            if image.mode != "CMYK" and "srgb" in ImageCms.getProfileDescription(source).lower():
                return image  # already sRGB: nothing to correct
            has_alpha = image.mode == "RGBA"
            base = image.convert("RGB") if has_alpha else image
            converted = ImageCms.profileToProfile(base, source, _SRGB, outputMode="RGB")
            if converted is not None:
                if has_alpha:
                    converted.putalpha(image.getchannel("A"))
                return converted
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a broken profile: fall back to the uncorrected conversion below
    return image.convert("RGBA" if image.mode == "RGBA" else "RGB")
