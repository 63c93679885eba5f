"""Content digests and immutable, atomically published dataset folders.

The dataset digest is the data version every trained model points back to, so it must depend
on content only (no times, no absolute crop paths), and a published folder must never change:
folders are written under a temporary name and renamed into place in one step.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any

MANIFEST_NAME = "manifest.json"


def canonical_json(value: Any) -> str:
    """One spelling per value: sorted keys, no spaces, plain ASCII."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def manifest_digest(body: dict[str, Any]) -> str:
    """sha256 of the manifest body; the body lists every image's own sha256, so pixels count too."""
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


def staging_dir(out_root: Path) -> Path:
    """A fresh private folder beside the final ones (same filesystem, so the rename is atomic)."""
    out_root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=".staging-", dir=out_root))


def read_manifest(folder: Path) -> dict[str, Any]:
    return json.loads((folder / MANIFEST_NAME).read_text())


def _make_read_only(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)


def publish(staging: Path, final: Path, body: dict[str, Any], digest: str) -> bool:
    """Write the manifest into `staging` and rename it to `final`; True if this call published.

    If `final` already exists (an earlier run, or a concurrent one that won the race) it is kept
    as it is and `staging` is deleted; a `final` holding a different digest is an error, never
    overwritten.
    """
    if final.exists():
        shutil.rmtree(staging)
        _check_existing(final, digest)
        return False
    manifest = dict(body, digest=digest)
    (staging / MANIFEST_NAME).write_text(json.dumps(manifest, sort_keys=True, indent=1) + "\n")
    _make_read_only(staging)
    try:
        os.rename(staging, final)
    except OSError:
        if not final.exists():
            raise
        shutil.rmtree(staging)
        _check_existing(final, digest)
        return False
    return True


def _check_existing(final: Path, digest: str) -> None:
    try:
        found = read_manifest(final).get("digest")
    except (OSError, ValueError) as error:
        raise RuntimeError(f"{final} exists but its manifest cannot be read ({error}); remove it by hand") from error
    if found != digest:
        raise RuntimeError(f"{final} holds dataset {found}, not {digest}; refusing to overwrite it")
