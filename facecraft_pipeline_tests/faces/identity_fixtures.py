"""Two real people as ArcFace-aligned crops, built offline from photos shipped inside dependencies.

Grace Hopper (matplotlib sample data) and Eileen Collins (skimage's astronaut), each with the
variations a photo library holds: flips, ±15° rotations, brightness, JPEG quality, half size.
The crops are made here (dlib HOG + 68 landmarks -> ArcFace template, similarity transform) so
these tests do not depend on the production aligner; results are cached per process because the
dlib models take a moment to run.
"""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path

import cv2
import dlib
import numpy as np
from matplotlib import cbook
from PIL import Image, ImageEnhance
from skimage import data
from skimage.transform import SimilarityTransform

from facecraft_pipeline.faces.embed import DlibEmbedder
from facecraft_pipeline.faces.model_files import SHAPE_68, shape_predictor

# ArcFace 112x112 template: left eye, right eye, nose tip, mouth left, mouth right.
ARCFACE_112 = np.array(
    [(38.2946, 51.6963), (73.5318, 51.5014), (56.0252, 71.7366), (41.5493, 92.3655), (70.7299, 92.2041)]
)
VARIATIONS = ("original", "flip", "rot+15", "rot-15", "dark", "bright", "jpeg30", "half")
PEOPLE = ("grace", "astronaut")


@cache
def _dlib_models() -> tuple[object, object]:
    detector = dlib.get_frontal_face_detector()
    predictor = shape_predictor(SHAPE_68)
    return detector, predictor


def photo(person: str) -> np.ndarray:
    """The original RGB photo of `person` ("grace" or "astronaut")."""
    if person == "grace":
        with Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as image:
            return np.asarray(image.convert("RGB"))
    if person == "astronaut":
        return np.asarray(data.astronaut())
    raise ValueError(person)


def vary(image: np.ndarray, variation: str) -> np.ndarray:
    """One library-style variation of a photo."""
    pil = Image.fromarray(image)
    if variation == "original":
        out = pil
    elif variation == "flip":
        out = pil.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    elif variation in ("rot+15", "rot-15"):
        out = pil.rotate(15 if variation == "rot+15" else -15, resample=Image.Resampling.BICUBIC)
    elif variation in ("dark", "bright"):
        out = ImageEnhance.Brightness(pil).enhance(0.6 if variation == "dark" else 1.4)
    elif variation == "jpeg30":
        buffer = io.BytesIO()
        pil.save(buffer, format="JPEG", quality=30)
        out = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    elif variation == "half":
        out = pil.resize((pil.width // 2, pil.height // 2), Image.Resampling.LANCZOS)
    else:
        raise ValueError(variation)
    return np.asarray(out)


def arcface_crop(image: np.ndarray, size: int = 112) -> np.ndarray:
    """Align the most confident face of `image` onto the ArcFace template at `size` px."""
    detector, predictor = _dlib_models()
    boxes, scores, _ = detector.run(image, 1)  # type: ignore[attr-defined]
    assert len(boxes) > 0, "no face found"
    box = boxes[int(np.argmax(scores))]
    shape = predictor(image, box)  # type: ignore[operator]
    points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
    five = np.array([points[36:42].mean(0), points[42:48].mean(0), points[30], points[48], points[54]])
    transform = SimilarityTransform.from_estimate(five, ARCFACE_112 * size / 112.0)
    return cv2.warpAffine(image, transform.params[:2], (size, size), flags=cv2.INTER_LINEAR)


@cache
def identity_crops(size: int = 112) -> dict[str, dict[str, np.ndarray]]:
    """{person: {variation: aligned crop}} for both people and every variation."""
    return {person: {v: arcface_crop(vary(photo(person), v), size) for v in VARIATIONS} for person in PEOPLE}


def save_png(image: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    return path


@cache
def dlib_embedder() -> DlibEmbedder:
    return DlibEmbedder()


@cache
def identity_embeddings(size: int = 112) -> dict[str, np.ndarray]:
    """{person: (len(VARIATIONS), 128) dlib vectors of that person's crops, in VARIATIONS order}."""
    crops = identity_crops(size)
    return {person: dlib_embedder().embed([crops[person][v] for v in VARIATIONS]) for person in PEOPLE}
