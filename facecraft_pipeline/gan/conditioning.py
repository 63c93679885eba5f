"""How well an identity-conditioned generator follows its condition, judged by a face embedder.

For each person with enough faces, G draws samples conditioned on that person's own embeddings;
a sample counts when the embedder finds a face nearest that person (of everyone in the library)
and within the same-person distance. The embedder is the caller's (`find_faces`), so the figure
says which one judged it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from facecraft_pipeline.gan.sample import fixed_latents
from facecraft_pipeline.training.images import to_uint8

FindFaces = Callable[[Sequence[Image.Image]], list[np.ndarray | None]]


@dataclass(frozen=True, eq=False)
class IdentityCondition:
    """What an identity-conditioned GAN learns from beside its images (see `GanSettings.condition`)."""

    per_image: torch.Tensor  # (N, D): each training image's identity embedding (anybody in the library)
    owner: torch.Tensor  # (K, D): the owner's embeddings, which G draws when given no identity
    people: Mapping[str, torch.Tensor] = field(default_factory=dict)  # name -> centroid, kept for the explorer's picker

    def __post_init__(self) -> None:
        if not len(self.owner) or self.owner.shape[1:] != self.per_image.shape[1:]:
            raise ValueError(f"an identity condition needs at least one owner embedding of the images' size "
                             f"{tuple(self.per_image.shape[1:])}, got {tuple(self.owner.shape)}")


@torch.no_grad()
def conditioning_quality(generator: torch.nn.Module, faces: Mapping[str, np.ndarray], find_faces: FindFaces, samples: int = 16,
                         same_person: float = 0.6, metric: str = "euclidean", seed: int = 777) -> dict[str, float]:
    """Share of `samples` images conditioned on each person that are judged to be them.

    `faces` maps a person's name to their faces' embeddings (rows), in the space `find_faces` returns;
    `metric` ("euclidean" or "cosine") and `same_person` are the embedder's.
    """
    device = next(generator.parameters()).device
    z = fixed_latents(generator, samples, seed).to(device)
    was_training = generator.training
    generator.eval()
    shares = {}
    try:
        for name, rows in faces.items():
            condition = torch.from_numpy(np.asarray(rows, np.float32)[np.arange(samples) % len(rows)]).to(device)
            images = [Image.fromarray(a) for a in to_uint8(generator(z, None, condition))]
            hits = 0
            for vector in find_faces(images):
                if vector is None:
                    continue
                nearest = {other: float(_distances(np.asarray(v), vector, metric).min()) for other, v in faces.items()}
                best = min(nearest, key=nearest.__getitem__)
                hits += int(best == name and nearest[best] < same_person)
            shares[name] = hits / samples
    finally:
        generator.train(was_training)
    return shares


def _distances(rows: np.ndarray, vector: np.ndarray, metric: str) -> np.ndarray:
    if metric == "cosine":
        return 1 - rows @ vector / (np.linalg.norm(rows, axis=1) * np.linalg.norm(vector) + 1e-12)
    return np.linalg.norm(rows - vector, axis=1)
