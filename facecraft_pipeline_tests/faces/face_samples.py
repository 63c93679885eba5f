"""Real photos shipped inside our dependencies, and files made from them, for the face tests.

Grace Hopper (matplotlib) and the astronaut Eileen Collins (scikit-image) are public-domain
portraits with one frontal face each; coffee and chelsea (a cat) have no human face.
"""

from __future__ import annotations

import struct
import zlib
from functools import cache
from pathlib import Path

import numpy as np
import skimage.data
from matplotlib import cbook
from PIL import Image


def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array, dtype=np.uint8)
    array.flags.writeable = False
    return array


@cache
def grace_hopper() -> np.ndarray:
    """600x512 RGB portrait (read-only array)."""
    with cbook.get_sample_data("grace_hopper.jpg") as handle:
        return _frozen(np.array(Image.open(handle).convert("RGB")))


@cache
def astronaut() -> np.ndarray:
    return _frozen(skimage.data.astronaut())


@cache
def coffee() -> np.ndarray:
    return _frozen(skimage.data.coffee())


@cache
def chelsea() -> np.ndarray:
    return _frozen(skimage.data.chelsea())


def side_by_side(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Two photos pasted into one (the shorter padded with grey at the bottom)."""
    height = max(left.shape[0], right.shape[0])
    canvas = np.full((height, left.shape[1] + right.shape[1], 3), 128, dtype=np.uint8)
    canvas[: left.shape[0], : left.shape[1]] = left
    canvas[: right.shape[0], left.shape[1] :] = right
    return canvas


def stored_for_orientation(upright: np.ndarray, orientation: int) -> np.ndarray:
    """The pixels a camera stores for an upright scene when it writes EXIF Orientation 6 or 8."""
    turns = {6: 1, 8: -1}[orientation]  # 6: viewer turns 90 deg clockwise, so stored turned anticlockwise
    return np.ascontiguousarray(np.rot90(upright, turns))


def save(array: np.ndarray, path: Path, exif_orientation: int | None = None, **options: object) -> Path:
    """Write an RGB array with Pillow (format from the suffix), optionally with an Orientation tag."""
    image = Image.fromarray(np.asarray(array))
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        options["exif"] = exif.tobytes()
    image.save(path, **options)
    return path


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims width x height but whose pixel data is a few bytes: a decompression bomb's shape."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))
    return path
