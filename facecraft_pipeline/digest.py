"""Content digests: one sha256 of a file, one of a set of files. Every stage names data by these."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Content hash of a file, read in chunks so memory stays flat."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def files_digest(paths: Iterable[Path]) -> str:
    """sha256 over the sorted per-file hashes: the same images in any order give the same digest."""
    return hashes_digest(sha256_file(Path(p)) for p in paths)


def hashes_digest(hashes: Iterable[str]) -> str:
    """`files_digest` of files whose sha256 hashes are already known."""
    digest = hashlib.sha256()
    for item in sorted(hashes):
        digest.update(item.encode())
    return digest.hexdigest()
