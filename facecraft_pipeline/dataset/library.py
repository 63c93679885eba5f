"""Every person's faces with their identity embeddings: the identity-conditioned GAN's training set.

The owner-only dataset holds a handful of images when a person starts out; the faces of friends and
family in the same library teach a conditioned generator what a face is, and the owner's
embeddings tell it whose face to draw (the conditional-face project's idea). The owner's held-out
crops stay out, so the sweep still scores against photos the model never saw.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from facecraft_pipeline.atomic import atomic_path
from facecraft_pipeline.faces.attributes import ATTRIBUTE_NAMES, face_attributes
from facecraft_pipeline.faces.cluster import sheet_name

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
    attributes: np.ndarray  # (N, len(ATTRIBUTE_NAMES)) float32, measured on the full-size aligned crop (AC-GAN controls)
    digest: str = ""  # of the crops, their people and the size: the folder's name

    def controls(self, names: Sequence[str]) -> np.ndarray:
        """(N, len(names)) of the named attributes, for a conditioned GAN that also learns controls."""
        return self.attributes[:, [ATTRIBUTE_NAMES.index(n) for n in names]]

    @property
    def owner_embeddings(self) -> np.ndarray:
        return self.embeddings[self.people == self.owner]

    def centroids(self) -> dict[str, np.ndarray]:
        """Each person's mean identity, named as the contact sheets are ('owner', 'cluster-<n>'); faces in no cluster left out."""
        return {sheet_name(label, self.owner): self.embeddings[self.people == label].mean(0)
                for label in sorted(set(self.people[self.people >= 0].tolist()))}

    def faces_by_person(self, min_faces: int = 3) -> dict[str, np.ndarray]:
        """The embeddings of each person with at least `min_faces` faces (for conditioning quality), named as `centroids`."""
        labels, counts = np.unique(self.people[self.people >= 0], return_counts=True)
        return {sheet_name(int(label), self.owner): self.embeddings[self.people == label]
                for label, count in zip(labels, counts) if count >= min_faces}

    def counts(self) -> dict[str, int]:
        return {"library_images": len(self.paths), "library_people": len(set(self.people[self.people >= 0].tolist())),
                "library_owner_images": int((self.people == self.owner).sum())}


def write_library(items: Sequence[LibraryItem], root: Path, resolution: int, owner: int) -> LibraryFaces:
    """Resize each distinct crop to `resolution` into `root/<digest>/library/` and save the vectors beside it.

    The folder is named by the content digest, so an unchanged library is found and re-used.
    Byte-identical crops are kept once; crops smaller than `resolution` are upsampled (a face prior
    needs faces, not sharpness); unreadable crops are skipped (the crops manifest already vetted them).
    """
    lines = [f"resolution {resolution}", f"owner {owner}", *sorted(f"{i.crop_sha256} {i.person}" for i in items)]
    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()
    folder = Path(root) / digest[:16]
    found = read_library(folder)
    if found is not None:
        return found
    out = folder / FOLDER
    out.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    paths, people, vectors, attributes = [], [], [], []
    for item in sorted(items, key=lambda i: i.crop_sha256):
        if item.crop_sha256 in seen:
            continue
        seen.add(item.crop_sha256)
        path = out / f"{item.crop_sha256[:16]}.png"
        try:
            with Image.open(item.crop_path) as image:
                crop = ImageOps.exif_transpose(image).convert("RGB")
        except OSError:
            continue
        with atomic_path(path) as tmp:
            ImageOps.fit(crop, (resolution, resolution), Image.Resampling.LANCZOS).save(tmp, format="PNG")
        measured = face_attributes(np.asarray(crop))
        attributes.append([measured[name] for name in ATTRIBUTE_NAMES])
        paths.append(path)
        people.append(item.person)
        vectors.append(np.asarray(item.embedding, np.float32))
    faces = LibraryFaces(tuple(paths), np.asarray(people, np.int64), np.stack(vectors) if vectors else np.zeros((0, 0), np.float32),
                         owner, np.asarray(attributes, np.float32).reshape(-1, len(ATTRIBUTE_NAMES)), digest)
    with atomic_path(folder / FILE) as tmp, open(tmp, "wb") as handle:  # written last: its presence means complete
        np.savez(handle, files=np.array([p.name for p in paths]), people=faces.people, embeddings=faces.embeddings, owner=owner,
                 attributes=faces.attributes, digest=digest)
    return faces


def read_library(folder: Path) -> LibraryFaces | None:
    """The library faces a dataset folder holds (None for a dataset made without them)."""
    path = Path(folder) / FILE
    if not path.is_file():
        return None
    with np.load(path) as data:
        files = [Path(folder) / FOLDER / str(name) for name in data["files"]]
        return LibraryFaces(tuple(files), data["people"], data["embeddings"].astype(np.float32), int(data["owner"]),
                            data["attributes"].astype(np.float32), str(data["digest"]))
