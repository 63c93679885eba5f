"""One identity probe: how any image (a generated sample, a training crop) becomes an identity vector.

Detect with the detector `face_crops` used, align the best face to the ArcFace template (112 px),
embed with the embedder `identity_clusters` used: the vectors then compare with the owner's real
ones. Images narrower than the detect side on their longest edge (a 64 px GAN sample) are first
upscaled, Lanczos, so that edge is `detect_side` (HOG finds faces from ~40 px up). The GAN's
training-time quality scores, the evaluation sweep and the identity-conditioned GAN all use this
one class, so a face is found and embedded the same way everywhere.

    probe = IdentityProbe(identity.probe, device)     # identity = identity_clusters' OwnerIdentity
    vectors = probe.embed(images)                     # one vector per image, None where no face
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from facecraft_pipeline.faces.align import align_face
from facecraft_pipeline.faces.detect import FaceDetector, make_detector
from facecraft_pipeline.faces.detector_settings import DetectorSettings
from facecraft_pipeline.faces.embed import Embedder, make_embedder
from facecraft_pipeline.faces.embedder_settings import EmbedderSettings

DETECT_SIDE = 256  # generated images smaller than this are upscaled to it before detection
ALIGNED_SIZE = 112  # the ArcFace crop every embedder is given
DETECTOR_NOT_IN_KEY = ("batch_size", "workers", "retinaface_download")  # how fast, not what is found


@dataclass(frozen=True)
class ProbeSpec:
    """What a probe is built from: the detector settings `face_crops` recorded, the embedder `identity_clusters` used."""

    detector: DetectorSettings = field(default_factory=DetectorSettings)
    embedder: EmbedderSettings = field(default_factory=EmbedderSettings)

    def with_detector(self, **overrides: Any) -> ProbeSpec:
        """The same probe with some detector settings replaced (None values are left as they are)."""
        given = {k: v for k, v in overrides.items() if v is not None}
        return dataclasses.replace(self, detector=dataclasses.replace(self.detector, **given)) if given else self

    @property
    def detector_key(self) -> dict[str, Any]:
        """The detector settings that decide which faces are found (a cache key), with the effective score floor."""
        settings = {k: v for k, v in dataclasses.asdict(self.detector).items() if k not in DETECTOR_NOT_IN_KEY}
        return settings | {"score_floor": self.detector.score_floor}


@dataclass(frozen=True)
class Probed:
    """One image through the probe: how many faces were found, and the best one's identity vector (None: no face)."""

    faces: int
    vector: np.ndarray | None


def upscaled(image: Image.Image, side: int = DETECT_SIDE) -> Image.Image:
    """RGB, with the longest edge enlarged to `side` (Lanczos) when shorter; larger images are left as they are."""
    image = image.convert("RGB")
    if max(image.size) >= side:
        return image
    scale = side / max(image.size)
    return image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)


class IdentityProbe:
    """Detect -> align -> embed. The embedder loads at once (its name and metric are needed to compare); the detector
    on first use, so a sweep whose scores all come from its cache never loads one."""

    def __init__(self, spec: ProbeSpec = ProbeSpec(), device: Any = "cpu", *, embedder: Embedder | None = None) -> None:
        self.spec = spec
        self.device = device
        self.embedder = embedder if embedder is not None else make_embedder(spec.embedder.kind, spec.embedder.onnx_model,
                                                                            device=str(device))
        self._detector: FaceDetector | None = None

    @property
    def detector(self) -> FaceDetector:
        if self._detector is None:
            self._detector = make_detector(self.spec.detector, self.device)
        return self._detector

    @property
    def name(self) -> str:
        """The embedder's name: vectors of two probes compare only when it is the same."""
        return self.embedder.name

    def probe(self, images: Sequence[Image.Image], detect_side: int = DETECT_SIDE) -> list[Probed]:
        """Per image: the faces found and the identity vector of the best-scoring one."""
        arrays = [np.asarray(upscaled(image, detect_side)) for image in images]
        found = self.detector.detect(arrays) if arrays else []
        crops = [align_face(array, faces[0].landmarks, ALIGNED_SIZE) for array, faces in zip(arrays, found, strict=True) if faces]
        vectors = iter(self.embedder.embed(crops) if crops else [])
        return [Probed(len(faces), next(vectors) if faces else None) for faces in found]

    def embed(self, images: Sequence[Image.Image], detect_side: int = DETECT_SIDE) -> list[np.ndarray | None]:
        """One identity vector per image; None where no face is found."""
        return [p.vector for p in self.probe(images, detect_side)]
