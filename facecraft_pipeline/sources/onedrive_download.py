"""Downloading photos into the mirror: streamed, verified, retried, journaled one by one.

Each body streams from the item's pre-authenticated download URL to a temp file, is checked
against the size and hash Graph announced, and only then replaces the mirror file. When Graph
announced no hash, the photo is kept but marked unverified (`verified: False`) and asked about
again on the next sync (`recheck_unverified`). A mirror file that already holds the announced
bytes (a killed sync) is adopted instead of fetched again -- never on size alone. Each mirror
file's size and mtime are recorded when it is written; when they move, `intact` hashes it in full.

Stopping: every attempt has a deadline (`download_deadline_s`) besides the read timeout, and a
cancelled sync (Ctrl-C, a Dagster run cancel) aborts every running download at once by shutting
its socket down, so a download that stopped sending never holds the process. What finished
before is already journaled. The Graph bearer token never goes to the download host, and
download URLs (credentials themselves) are never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import hashlib
import logging
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urljoin

import httpcore
import httpx
from msgraph.graph_service_client import GraphServiceClient

from facecraft_pipeline.sources.base import sha256_file
from facecraft_pipeline.sources.onedrive_delta import Item, Scope, parse_entry
from facecraft_pipeline.sources.onedrive_graph import GraphStatusError, get_json
from facecraft_pipeline.sources.onedrive_hash import Verifier
from facecraft_pipeline.sources.onedrive_settings import OneDriveSettings
from facecraft_pipeline.sources.sync_state import SyncStateStore

# The source's logger, not __name__: every OneDrive sync message keeps one logger name.
logger = logging.getLogger("facecraft_pipeline.sources.onedrive")

_RETRY_BACKOFF_S = 0.25  # first pause after a failed download attempt; doubles per attempt
_MAX_RETRY_AFTER_S = 120.0
_CONNECT_TIMEOUT_S = 10.0  # a blocked connect() is the one wait an abort cannot cut short
_REDIRECTS = {301, 302, 303, 307, 308}


class _DownloadError(Exception):
    """One attempt at one file failed in a way worth retrying; the message names no URL."""

    def __init__(self, reason: str, delay: float | None = None) -> None:
        super().__init__(reason)
        self.delay = delay


class _Aborted(Exception):
    """Raised in a worker thread whose download was aborted (deadline or cancelled sync)."""


class _Transfer:
    """One download attempt that another thread can abort at once, by shutting its sockets down.

    A blocked `recv` does not notice a flag, nor `close()` from another thread; `shutdown()` wakes
    it (it returns end-of-stream) so the worker thread unwinds within milliseconds.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._streams: list[_AbortableStream] = []
        self.aborted = ""

    def attach(self, stream: _AbortableStream) -> None:
        with self._lock:
            if self.aborted:
                raise _Aborted(self.aborted)
            if stream not in self._streams:
                self._streams.append(stream)

    def abort(self, why: str) -> None:
        with self._lock:
            self.aborted = why
            streams = list(self._streams)
        for stream in streams:
            stream.interrupt()


_active = threading.local()  # the _Transfer the current worker thread runs, if any


class _AbortableStream(httpcore.NetworkStream):
    """A socket stream that registers with the running transfer on every read or write (pooled
    connections move between transfers), so that transfer's abort can interrupt it."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def _attach(self) -> None:
        transfer = getattr(_active, "transfer", None)
        if transfer is not None:
            transfer.attach(self)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self._attach()
        return self._inner.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._attach()
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _AbortableStream(self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)

    def interrupt(self) -> None:
        sock = self._inner.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the OS call, also under an SSLSocket


class _AbortableBackend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Any = None) -> httpcore.NetworkStream:
        return _AbortableStream(self._inner.connect_tcp(host, port, timeout, local_address, socket_options))

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Any = None) -> httpcore.NetworkStream:  # pragma: no cover
        return _AbortableStream(self._inner.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


@dataclass(frozen=True)
class _FetchContext:
    graph: GraphServiceClient
    pool: httpcore.ConnectionPool
    workers: ThreadPoolExecutor
    scope: Scope
    mirror_dir: Path
    max_attempts: int
    timeouts: dict[str, float | None]
    deadline_s: float


def local_name(item_id: str, name: str) -> str:
    """Mirror file name: the item id (stable across renames and moves) plus the photo's suffix."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", item_id)
    if safe != item_id:
        safe = f"{safe}-{hashlib.sha1(item_id.encode()).hexdigest()[:8]}"
    return safe + PurePosixPath(name).suffix.lower()


def intact(path: Path, item: Item) -> bool:
    """Whether a mirror file still holds the bytes recorded for it (else it is fetched again).

    Cheap when nothing touched it: size and mtime as recorded at write. When the mtime moved (or
    none was recorded, by an older version), the file is hashed in full against the recorded
    sha256; a match records the new mtime in `item`. A damage that keeps both size and mtime
    (a deliberate `touch -r`) is not seen.
    """
    try:
        info = path.stat()
    except OSError:
        return False
    if info.st_size != int(item["size"]):
        return False
    if item.get("mtime_ns") == info.st_mtime_ns:
        return True
    try:
        same = bool(item.get("sha256")) and sha256_file(path) == item["sha256"]
    except OSError:
        return False
    if same:
        item["mtime_ns"] = info.st_mtime_ns
    return same


def is_verified(item: Item) -> bool:
    """Whether an ok item's bytes were checked against a hash (older states: it had one to check)."""
    return bool(item.get("verified", bool(item.get("hashes"))))


async def recheck_unverified(graph: GraphServiceClient, scope: Scope, items: dict[str, Item], mirror_dir: Path) -> int:
    """Ask Graph again about the photos kept without a hash; returns how many became pending.

    Graph computes hashes after an upload, so a hash missing last time is often there now: the
    mirror file is checked against it (a mismatch means download again). Still no hash: a changed
    cTag or size means download again; otherwise the file stays, still unverified.
    """
    refetch = 0
    for item_id, item in items.items():
        if item["status"] != "ok" or is_verified(item) or not item.get("local"):
            continue
        try:
            _url, now = await _current(graph, scope, item_id)
        except _DownloadError as problem:
            logger.info("OneDrive: could not re-check unverified %s (%s); kept as it is", item["name"], problem)
            continue
        if now.get("hashes"):
            adopted = await asyncio.to_thread(_adopt_existing, mirror_dir / item["local"], now)
            if adopted is not None:
                item.update(now, verified=True, sha256=adopted)
                continue
        elif int(now["size"]) == int(item["size"]) and now["key"] == item["key"]:
            continue
        item.update(now, status="pending", local=None, sha256=None, verified=False)
        refetch += 1
    return refetch


async def download_pending(graph: GraphServiceClient, scope: Scope, items: dict[str, Item], store: SyncStateStore,
                           mirror_dir: Path, settings: OneDriveSettings) -> None:
    """Fetch every "pending" item, at most `max_concurrency` at once, journaling each outcome."""
    pending = [item_id for item_id, item in items.items() if item["status"] == "pending"]
    logger.info("OneDrive sync: %d photos listed, %d to download", len(items), len(pending))
    if not pending:
        return
    width = max(1, settings.max_concurrency)
    limit = asyncio.Semaphore(width)
    timeouts: dict[str, float | None] = {"connect": min(_CONNECT_TIMEOUT_S, settings.read_timeout_s),
                                         "read": settings.read_timeout_s, "write": settings.read_timeout_s,
                                         "pool": None}
    with httpcore.ConnectionPool(max_connections=width, retries=0, network_backend=_AbortableBackend()) as pool, \
            ThreadPoolExecutor(max_workers=width, thread_name_prefix="onedrive-download") as workers:
        context = _FetchContext(graph, pool, workers, scope, mirror_dir, settings.max_attempts, timeouts,
                                settings.download_deadline_s)

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
        return {"status": "ok", "reason": "", "local": final.name, "sha256": adopted, "verified": True,
                "mtime_ns": _mtime_ns(final)}
    temp = context.mirror_dir / f".{final.name}.part"
    attempts, reason = max(1, context.max_attempts), ""
    for attempt in range(1, attempts + 1):
        delay = _RETRY_BACKOFF_S * 2 ** (attempt - 1)
        try:
            url, now = await _current(context.graph, context.scope, item_id)  # may have changed
            sha256, verified = await _transfer(context, url, temp, now)
            temp.replace(final)
            if not verified:
                logger.warning("OneDrive gave no hash for %s: kept after a size check only, re-checked next sync",
                               item["name"])
            return {**now, "status": "ok", "reason": "", "local": final.name, "sha256": sha256,
                    "verified": verified, "mtime_ns": _mtime_ns(final)}
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


async def _transfer(context: _FetchContext, url: str, temp: Path, meta: Item) -> tuple[str, bool]:
    """One streamed attempt in a worker thread, within the deadline; cancelling aborts it at once."""
    loop = asyncio.get_running_loop()
    transfer = _Transfer()
    work = loop.run_in_executor(context.workers, _stream_in_thread, transfer, context.pool, url, temp, meta,
                                context.timeouts)
    try:
        async with asyncio.timeout(context.deadline_s):
            return await asyncio.shield(work)
    except TimeoutError:
        transfer.abort("deadline")
        with contextlib.suppress(Exception):
            await work  # the thread unwinds within milliseconds; the temp file is free again
        raise _DownloadError(f"took longer than the {context.deadline_s:g} s download deadline") from None
    except asyncio.CancelledError:
        transfer.abort("sync cancelled")
        raise


def _stream_in_thread(transfer: _Transfer, pool: httpcore.ConnectionPool, url: str, target: Path, meta: Item,
                      timeouts: dict[str, float | None]) -> tuple[str, bool]:
    _active.transfer = transfer
    try:
        return _stream_to_file(pool, url, target, meta, timeouts)
    except Exception as error:
        if transfer.aborted:
            raise _Aborted(transfer.aborted) from None
        raise error
    finally:
        _active.transfer = None


def _mtime_ns(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


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


def _stream_to_file(pool: httpcore.ConnectionPool, url: str, target: Path, meta: Item,
                    timeouts: dict[str, float | None]) -> tuple[str, bool]:
    """Stream `url` into `target`, checking size and Graph's hash on the way; (sha256, hash-verified).

    Blocking, run in a worker thread: sync httpcore costs less per chunk than asyncio, and hashing
    and writing one file then overlap with receiving another. httpcore, not httpx: httpx logs every
    request URL at INFO, and a download URL is a credential.
    """
    for _hop in range(5):
        with pool.stream("GET", url, headers=[(b"Accept", b"*/*"), (b"User-Agent", b"facecraft")],
                         extensions={"timeout": timeouts}) as response:
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


def _write_body(response: httpcore.Response, target: Path, meta: Item) -> tuple[str, bool]:
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
    if verifier.name and not verifier.matches():
        raise _DownloadError(f"{verifier.name} mismatch: the downloaded bytes differ from what Graph announced")
    return sha256.hexdigest(), bool(verifier.name)


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
