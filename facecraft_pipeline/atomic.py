"""Atomic file writes: a reader (or a crash) sees the old file or the new one, never half of one.

The new content goes to a temporary file beside the target (same folder, so the same file system
and `os.replace` is an atomic rename), then is renamed over it. The temporary name is hidden,
ends in ".tmp" (so no image or checkpoint glob picks up a leftover) and is created exclusively,
so concurrent writers never collide. Without `mode` the file gets the usual umask-based mode,
like `open(path, "w")` (tempfile.mkstemp would force 0600).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(path: Path, mode: int | None = None) -> Iterator[Path]:
    """Yield an empty temporary file beside `path` to write by name; on success it replaces `path`.

    `mode` (e.g. 0o600 for secrets) is set before the rename; on any error the temporary file is
    removed and `path` is left as it was. The parent folder is created if needed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:  # never wider than `mode`, even before the chmod
            os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 if mode is None else mode))
            break
        except FileExistsError:
            continue
    try:
        yield temporary
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: Path, data: bytes, mode: int | None = None, *, fsync: bool = False) -> None:
    """Write `data` atomically; `fsync` also makes it survive a power cut (slower: state, logins)."""
    with atomic_path(path, mode) as temporary, open(temporary, "wb") as handle:
        handle.write(data)
        if fsync:
            handle.flush()
            os.fsync(handle.fileno())


def write_json_atomic(
    path: Path, data: Any, mode: int | None = None, indent: int | None = 1, *, fsync: bool = False, **dumps: Any
) -> None:
    """`json.dumps(data, indent=indent, **dumps)` written atomically as UTF-8 (no trailing newline)."""
    write_bytes_atomic(path, json.dumps(data, indent=indent, **dumps).encode("utf-8"), mode, fsync=fsync)
