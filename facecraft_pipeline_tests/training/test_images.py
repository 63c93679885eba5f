"""The one image loader and the one set digest every trainer uses."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from facecraft_pipeline.digest import files_digest
from facecraft_pipeline.training.images import load_images, to_float, to_uint8
from facecraft_pipeline_tests.gan.conftest import face_paths  # noqa: F401  (fixture)


def test_images_of_any_size_and_mode_load_as_square_rgb_at_the_resolution(face_paths: list[Path]) -> None:
    images = load_images(face_paths, 32)
    assert images.shape == (len(face_paths), 3, 32, 32) and images.dtype == torch.uint8
    x = to_float(images)
    assert x.min() >= -1 and x.max() <= 1 and x.min() < -0.5 and x.max() > 0.5


def test_float_and_uint8_conversions_round_trip(face_paths: list[Path]) -> None:
    images = load_images(face_paths[:3], 16)
    assert (torch.from_numpy(to_uint8(to_float(images))).permute(0, 3, 1, 2) == images).all()


def test_no_images_is_an_error() -> None:
    with pytest.raises(ValueError, match="no training images"):
        load_images([], 16)


def test_files_digest_follows_content_not_order(face_paths: list[Path]) -> None:
    assert files_digest(face_paths[:4]) == files_digest(face_paths[:4][::-1])
    assert files_digest(face_paths[:4]) != files_digest(face_paths[:3])
    assert files_digest(face_paths[:4]) != files_digest(face_paths[1:5])
