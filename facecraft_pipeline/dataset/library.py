"""Every person's faces with their identity embeddings: the identity-conditioned GAN's training set.

The owner-only dataset holds a handful of images when a person starts out; the faces of friends and
family in the same library teach a conditioned generator what a face is, and the owner's
embeddings tell it whose face to draw (the conditional-face project's idea). The owner's held-out
crops stay out, so the sweep still scores against photos the model never saw.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from facecraft_pipeline.atomic import atomic_path

FILE = "library.npz"
FOLDER = "library"


@dataclass(frozen=True)
class LibraryItem:
    """One kept face crop of anybody, with its cluster (the owner's label, another person's, or -1: nobody else's)."""

    crop_path: Path
    crop_sha256: str
    person: int
    embedding: np.ndarray


@dataclass(frozen=True, eq=False)
class LibraryFaces:
    """Images at the training size, one identity embedding and one person label per image."""

    paths: tuple[Path, ...]
    people: np.ndarray  # (N,) int: cluster label, -1 for faces in no cluster
    embeddings: np.ndarray  # (N, D) float32
    owner: int  # the owner's label

    @property
    def owner_embeddings(self) -> np.ndarray:
        return self.embeddings[self.people == self.owner]

    def groups(self, min_faces: int = 3) -> dict[int, np.ndarray]:
        """Row indices of each person with at least `min_faces` faces (for conditioning quality)."""
        labels, counts = np.unique(self.people[self.people >= 0], return_counts=True)
        return {int(label): np.flatnonzero(self.people == label) for label, count in zip(labels, counts) if count >= min_faces}

    def counts(self) -> dict[str, int]:
        return {"library_images": len(self.paths), "library_people": len(set(self.people[self.people >= 0].tolist())),
                "library_owner_images": int((self.people == self.owner).sum())}


def write_library(items: Sequence[LibraryItem], folder: Path, resolution: int, owner: int) -> LibraryFaces:
    """Resize each distinct crop to `resolution` into `folder/library/` and save the vectors beside it.

    Byte-identical crops are kept once; crops smaller than `resolution` are upsampled (a face prior
    needs faces, not sharpness); unreadable crops are skipped (the crops manifest already vetted them).
    """
    out = Path(folder) / FOLDER
    out.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    paths, people, vectors = [], [], []
    for item in sorted(items, key=lambda i: i.crop_sha256):
        if item.crop_sha256 in seen:
            continue
        seen.add(item.crop_sha256)
        path = out / f"{item.crop_sha256[:16]}.png"
        if not path.exists():
            try:
                with Image.open(item.crop_path) as image:
                    square = ImageOps.fit(ImageOps.exif_transpose(image).convert("RGB"), (resolution, resolution), Image.Resampling.LANCZOS)
            except OSError:
                continue
            with atomic_path(path) as tmp:
                square.save(tmp, format="PNG")
        paths.append(path)
        people.append(item.person)
        vectors.append(np.asarray(item.embedding, np.float32))
    faces = LibraryFaces(tuple(paths), np.asarray(people, np.int64), np.stack(vectors) if vectors else np.zeros((0, 0), np.float32), owner)
    np.savez(Path(folder) / FILE, files=np.array([p.name for p in paths]), people=faces.people, embeddings=faces.embeddings, owner=owner)
    return faces


def read_library(folder: Path) -> LibraryFaces | None:
    """The library faces a dataset folder holds (None for a dataset made without them)."""
    path = Path(folder) / FILE
    if not path.is_file():
        return None
    with np.load(path) as data:
        files = [Path(folder) / FOLDER / str(name) for name in data["files"]]
        return LibraryFaces(tuple(files), data["people"], data["embeddings"].astype(np.float32), int(data["owner"]))
