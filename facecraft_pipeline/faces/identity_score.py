"""How much generated faces look like the owner: detect, align, embed, compare with the owner.

Scores are cosine similarities between each generated face's embedding and the owner's centroid
(1.0 = same direction), plus the share of faces within the embedder's same-person distance.
Images where no face is found count as such: a generator that draws no faces scores nothing,
it is not scored zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from facecraft_pipeline.faces.align import align_face
from facecraft_pipeline.faces.detect import FaceDetector
from facecraft_pipeline.faces.embed import Embedder, embedding_distances


@dataclass(frozen=True)
class IdentityScore:
    images: int
    faces: int
    mean: float | None = None
    min: float | None = None
    max: float | None = None
    same_person_share: float | None = None  # faces within the embedder's same-person distance

    def as_metrics(self, prefix: str) -> dict[str, float]:
        values = {"images": self.images, "faces": self.faces, "similarity_mean": self.mean, "similarity_min": self.min,
                  "similarity_max": self.max, "same_person_share": self.same_person_share}
        return {f"{prefix}_{k}": float(v) for k, v in values.items() if v is not None}


def score_identity(
    images: Sequence[Image.Image],
    detector: FaceDetector,
    embedder: Embedder,
    owner_centroid: np.ndarray,
    detect_side: int = 256,
) -> IdentityScore:
    """Score each face found in `images` (upscaled to `detect_side` first: samples are small)."""
    arrays = [np.asarray(_upscaled(image, detect_side)) for image in images]
    crops = [align_face(array, face.landmarks, 112) for array, faces in zip(arrays, detector.detect(arrays)) for face in faces]
    if not crops:
        return IdentityScore(images=len(images), faces=0)
    vectors = embedder.embed(crops)
    similarity = 1.0 - embedding_distances(vectors, owner_centroid[None], "cosine")[:, 0]
    same = embedding_distances(vectors, owner_centroid[None], embedder.metric)[:, 0] < embedder.same_person_distance
    return IdentityScore(
        images=len(images),
        faces=len(crops),
        mean=float(similarity.mean()),
        min=float(similarity.min()),
        max=float(similarity.max()),
        same_person_share=float(same.mean()),
    )


def _upscaled(image: Image.Image, side: int) -> Image.Image:
    image = image.convert("RGB")
    if max(image.size) >= side:
        return image
    scale = side / max(image.size)
    return image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
