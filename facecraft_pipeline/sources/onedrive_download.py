"""Downloading photos into the mirror: streamed, verified, retried, journaled one by one.

Each body streams from the item's pre-authenticated download URL to a temp file, is checked
against the size and hash Graph announced, and only then replaces the mirror file. A mirror file
that already holds the announced bytes (a killed sync) is adopted instead of fetched again. The
Graph bearer token never goes to the download host, and download URLs (credentials themselves)
are never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import hashlib
import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING
from urllib.parse import urljoin

import httpcore
import httpx
from msgraph.graph_service_client import GraphServiceClient

from facecraft_pipeline.sources.onedrive_delta import Item, Scope, parse_entry
from facecraft_pipeline.sources.onedrive_graph import GraphStatusError, get_json
from facecraft_pipeline.sources.onedrive_hash import Verifier
from facecraft_pipeline.sources.sync_state import SyncStateStore

if TYPE_CHECKING:
    from facecraft_pipeline.sources.onedrive import OneDriveSettings

# The source's logger, not __name__: every OneDrive sync message keeps one logger name.
logger = logging.getLogger("facecraft_pipeline.sources.onedrive")

_RETRY_BACKOFF_S = 0.25  # first pause after a failed download attempt; doubles per attempt
_MAX_RETRY_AFTER_S = 120.0
_CHUNK_TIMEOUTS = {"connect": 30.0, "read": 60.0, "write": 60.0, "pool": None}
_REDIRECTS = {301, 302, 303, 307, 308}


class _DownloadError(Exception):
    """One attempt at one file failed in a way worth retrying; the message names no URL."""

    def __init__(self, reason: str, delay: float | None = None) -> None:
        super().__init__(reason)
        self.delay = delay


@dataclass(frozen=True)
class _FetchContext:
    graph: GraphServiceClient
    pool: httpcore.ConnectionPool
    workers: ThreadPoolExecutor
    scope: Scope
    mirror_dir: Path
    max_attempts: int


def local_name(item_id: str, name: str) -> str:
    """Mirror file name: the item id (stable across renames and moves) plus the photo's suffix."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", item_id)
    if safe != item_id:
        safe = f"{safe}-{hashlib.sha1(item_id.encode()).hexdigest()[:8]}"
    return safe + PurePosixPath(name).suffix.lower()


def intact(path: Path, size: int) -> bool:
    """Whether a mirror file still has its size (a file deleted or damaged by hand is fetched again)."""
    try:
        return path.stat().st_size == size
    except OSError:
        return False


async def download_pending(graph: GraphServiceClient, scope: Scope, items: dict[str, Item], store: SyncStateStore,
                           mirror_dir: Path, settings: OneDriveSettings) -> None:
    """Fetch every "pending" item, at most `max_concurrency` at once, journaling each outcome."""
    pending = [item_id for item_id, item in items.items() if item["status"] == "pending"]
    logger.info("OneDrive sync: %d photos listed, %d to download", len(items), len(pending))
    if not pending:
        return
    width = max(1, settings.max_concurrency)
    limit = asyncio.Semaphore(width)
    with httpcore.ConnectionPool(max_connections=width, retries=0) as pool, \
            ThreadPoolExecutor(max_workers=width, thread_name_prefix="onedrive-download") as workers:
        context = _FetchContext(graph, pool, workers, scope, mirror_dir, settings.max_attempts)

        async def one(item_id: str) -> None:
            async with limit:
                outcome = await _fetch(context, item_id, items[item_id])
            items[item_id] = {**items[item_id], **outcome}
            store.record(item_id, items[item_id])

        try:
            async with asyncio.TaskGroup() as group:
                for item_id in pending:
                    group.create_task(one(item_id))
        except BaseExceptionGroup as errors:  # e.g. the login expired: stop, and say why plainly
            raise errors.exceptions[0] from None


async def _fetch(context: _FetchContext, item_id: str, item: Item) -> Item:
    """Download one photo with retries; its outcome (ok/failed) as fields of its state."""
    loop = asyncio.get_running_loop()
    final = context.mirror_dir / local_name(item_id, item["name"])
    adopted = await loop.run_in_executor(context.workers, _adopt_existing, final, item)
    if adopted is not None:
        return {"status": "ok", "reason": "", "local": final.name, "sha256": adopted}
    temp = context.mirror_dir / f".{final.name}.part"
    attempts, reason = max(1, context.max_attempts), ""
    for attempt in range(1, attempts + 1):
        delay = _RETRY_BACKOFF_S * 2 ** (attempt - 1)
        try:
            url, now = await _current(context.graph, context.scope, item_id)  # may have changed
            sha256 = await loop.run_in_executor(context.workers, _stream_to_file, context.pool, url, temp, now)
            temp.replace(final)
            return {**now, "status": "ok", "reason": "", "local": final.name, "sha256": sha256}
        except _DownloadError as problem:
            reason, delay = str(problem), problem.delay if problem.delay is not None else delay
        except (httpcore.TimeoutException, httpcore.NetworkError, httpcore.ProtocolError,
                httpx.TransportError) as error:
            reason = f"connection failed ({type(error).__name__})"
        logger.warning("OneDrive download of %s, attempt %d/%d: %s", item["name"], attempt, attempts, reason)
        if attempt < attempts:
            await asyncio.sleep(delay)
    temp.unlink(missing_ok=True)
    return {"status": "failed", "reason": f"{reason} (gave up after {attempts} attempts; retried next sync)",
            "local": None, "sha256": None}


async def _current(graph: GraphServiceClient, scope: Scope, item_id: str) -> tuple[str, Item]:
    """The item as Graph describes it now, with its pre-authenticated download URL.

    The URL is read from the JSON body (`@microsoft.graph.downloadUrl`), not from the Location
    of a 302 on /content: httpcore logs response headers at DEBUG, so a Location would leak.
    """
    builder = graph.drives.by_drive_id(scope.drive_id).items.by_drive_item_id(item_id)
    try:
        item = await get_json(builder, "reading the item")
    except GraphStatusError as error:
        raise _DownloadError(f"Graph answered HTTP {error.status} for the item") from None
    url = item.get("@microsoft.graph.downloadUrl")
    if not isinstance(url, str) or "file" not in item:
        raise _DownloadError("Graph gave no download URL for the item")
    return url, parse_entry(item).meta


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _retry_after(value: str | None) -> float:
    """Seconds a throttled server asks us to wait (delta-seconds or an HTTP date; 1 s if absent)."""
    text = (value or "").strip()
    if text.isdigit():
        return min(float(text), _MAX_RETRY_AFTER_S)
    with contextlib.suppress(TypeError, ValueError):
        when = email.utils.parsedate_to_datetime(text)
        return min(max(0.0, when.timestamp() - time.time()), _MAX_RETRY_AFTER_S)
    return 1.0


def _stream_to_file(pool: httpcore.ConnectionPool, url: str, target: Path, meta: Item) -> str:
    """Stream `url` into `target`, checking size and Graph's hash on the way; returns the sha256.

    Blocking, run in a worker thread: sync httpcore costs less per chunk than asyncio, and hashing
    and writing one file then overlap with receiving another. httpcore, not httpx: httpx logs every
    request URL at INFO, and a download URL is a credential.
    """
    for _hop in range(5):
        with pool.stream("GET", url, headers=[(b"Accept", b"*/*"), (b"User-Agent", b"facecraft")],
                         extensions={"timeout": _CHUNK_TIMEOUTS}) as response:
            if response.status in _REDIRECTS:
                location = _header(response.headers, b"location")
                if not location:
                    raise _DownloadError(f"download host answered HTTP {response.status} without a Location")
                url = urljoin(url, location)
                continue
            if response.status in (429, 503):
                raise _DownloadError(f"download host throttled (HTTP {response.status})",
                                     delay=_retry_after(_header(response.headers, b"retry-after")))
            if response.status != 200:
                raise _DownloadError(f"download host answered HTTP {response.status}")
            return _write_body(response, target, meta)
    raise _DownloadError("too many redirects from the download host")


def _write_body(response: httpcore.Response, target: Path, meta: Item) -> str:
    size = int(meta["size"])
    sha256, verifier, received = hashlib.sha256(), Verifier(meta.get("hashes", {})), 0
    with open(target, "wb") as handle:
        for chunk in response.iter_stream():
            received += len(chunk)
            if received > size:
                raise _DownloadError(f"body longer than the {size} bytes Graph announced")
            handle.write(chunk)
            sha256.update(chunk)
            verifier.update(chunk)
    if received != size:
        raise _DownloadError(f"truncated body: {received} of {size} bytes")
    if not verifier.matches():
        raise _DownloadError(f"{verifier.name} mismatch: the downloaded bytes differ from what Graph announced")
    return sha256.hexdigest()


def _adopt_existing(path: Path, meta: Item) -> str | None:
    """sha256 of a mirror file that already holds exactly the announced bytes (resume), else None."""
    try:
        if path.stat().st_size != int(meta["size"]):
            return None
    except OSError:
        return None
    sha256, verifier = hashlib.sha256(), Verifier(meta.get("hashes", {}))
    if not verifier.name:
        return None  # size alone is too weak to trust an old file
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            sha256.update(block)
            verifier.update(block)
    return sha256.hexdigest() if verifier.matches() else None
