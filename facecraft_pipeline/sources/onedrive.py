"""OneDrive photo source: mirrors one OneDrive folder into local files through Microsoft Graph.

Listing uses the delta API (msgraph-sdk) so that a later sync asks only for what changed; the
delta link and every item's state live in `state_dir`. Downloads stream from the item's
pre-authenticated download URL straight to a temp file, are verified against the size and hash
Graph gives (QuickXorHash on personal OneDrive), and are journaled one by one, so a killed sync
resumes without fetching again what it finished. The Graph bearer token never goes to the
download host, and download URLs (credentials themselves) are never logged.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email.utils
import functools
import hashlib
import inspect
import json
import logging
import re
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal, Protocol, TypeVar
from urllib.parse import quote, urljoin

import httpcore
import httpx
import numpy as np
from azure.core.exceptions import ClientAuthenticationError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.native_response_handler import NativeResponseHandler
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from kiota_http.middleware.options import ResponseHandlerOption
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_request_adapter import options as graph_adapter_options
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core import GraphClientFactory

from facecraft_pipeline.sources.base import ChangeCheck, PhotoRecord, SyncReport
from facecraft_pipeline.sources.onedrive_auth import (
    LOGIN_HINT,
    SCOPES,
    LoginRequiredError,
    load_credential,
    resolve_auth_dir,
)
from facecraft_pipeline.sources.sync_state import SyncStateStore

logger = logging.getLogger(__name__)

T = TypeVar("T")
Item = dict[str, Any]  # one file's state as stored: metadata from Graph + outcome of the last sync

_STATE_NAME = "onedrive_state"
_STATE_VERSION = 1
_RETRY_BACKOFF_S = 0.25  # first pause after a failed download attempt; doubles per attempt
_MAX_RETRY_AFTER_S = 120.0
_CHUNK_TIMEOUTS = {"connect": 30.0, "read": 60.0, "write": 60.0, "pool": None}
_REDIRECTS = {301, 302, 303, 307, 308}
_MB = 1_000_000  # as the local source counts


@dataclass(frozen=True)
class OneDriveSettings:
    """Which OneDrive folder to mirror, and how. Exposed as Dagster config, hence only plain fields.

    `folder` is a path ("/Pictures", "/" for the whole drive) or a special folder ("special:photos").
    `max_file_mb` counts 1,000,000 bytes per MB, like the local source. `graph_base_url` is only
    changed for tests. `auth_dir` holds the saved login; None means `<state_dir>/onedrive_auth`.
    """

    client_id: str = ""
    tenant: str = "consumers"
    folder: str = "/Pictures"
    recursive: bool = True
    suffixes: str = ".jpg,.jpeg,.png,.heic,.heif,.webp"
    max_file_mb: float = 200.0
    min_file_bytes: int = 1
    max_concurrency: int = 4
    max_attempts: int = 3
    graph_base_url: str = "https://graph.microsoft.com/v1.0"
    auth_dir: str | None = None

    def suffix_set(self) -> frozenset[str]:
        return frozenset(
            s if s.startswith(".") else f".{s}" for s in (p.strip().lower() for p in self.suffixes.split(",")) if s
        )


class OneDriveError(RuntimeError):
    """Graph refused something the whole sync depends on (not one photo: those become "failed")."""


# --------------------------------------------------------------------------------------------
# QuickXorHash: the hash personal OneDrive gives for every file.


class QuickXorHash:
    """Microsoft's QuickXorHash (160-bit), fed in chunks; `b64digest()` is the form Graph returns.

    Byte k of the input is XORed into a 160-bit register at bit (11*k) mod 160, rotating; the
    length is XORed into the last 8 bytes. Since the position depends only on k mod 160, each chunk
    is folded into 160 columns with numpy and the rotation is done once at the end.
    """

    _WIDTH = 160
    _SHIFT = 11

    def __init__(self) -> None:
        self._columns = np.zeros(self._WIDTH, dtype=np.uint8)
        self._length = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        view = np.frombuffer(data, dtype=np.uint8)
        if view.size == 0:
            return
        whole = view.size - view.size % self._WIDTH
        folded = np.zeros(self._WIDTH, dtype=np.uint8)
        if whole:
            rows = view[:whole].view(np.uint64).reshape(-1, self._WIDTH // 8)
            folded ^= np.bitwise_xor.reduce(rows, axis=0).view(np.uint8)
        tail = view[whole:]
        folded[: tail.size] ^= tail
        offset = self._length % self._WIDTH  # column j of this chunk is byte (length + j) of the stream
        self._columns[offset:] ^= folded[: self._WIDTH - offset]
        self._columns[:offset] ^= folded[self._WIDTH - offset:]
        self._length += view.size

    def digest(self) -> bytes:
        width, mask = self._WIDTH, (1 << self._WIDTH) - 1
        register = 0
        for position, value in enumerate(self._columns.tolist()):
            if value:
                shift = position * self._SHIFT % width
                register ^= ((value << shift) | (value >> (width - shift))) & mask
        out = bytearray(register.to_bytes(width // 8, "little"))
        for i, byte in enumerate(self._length.to_bytes(8, "little")):
            out[width // 8 - 8 + i] ^= byte
        return bytes(out)

    def b64digest(self) -> str:
        return base64.b64encode(self.digest()).decode("ascii")


class _Verifier:
    """Checks a body against the strongest hash Graph gave (size alone when it gave none)."""

    def __init__(self, hashes: dict[str, str]) -> None:
        self.name, self.expected = "", ""
        self._hasher: Any = None
        for name, factory in (("quickXorHash", QuickXorHash), ("sha256Hash", hashlib.sha256),
                              ("sha1Hash", hashlib.sha1)):
            if hashes.get(name):
                self.name, self.expected, self._hasher = name, hashes[name], factory()
                break

    def update(self, chunk: bytes) -> None:
        if self._hasher is not None:
            self._hasher.update(chunk)

    def matches(self) -> bool:
        if self._hasher is None:
            return True
        if isinstance(self._hasher, QuickXorHash):
            return self._hasher.b64digest() == self.expected
        return str(self._hasher.hexdigest()).lower() == self.expected.lower()


# --------------------------------------------------------------------------------------------
# What one delta entry means for the mirror.


@dataclass(frozen=True)
class _Entry:
    id: str
    kind: Literal["file", "folder", "deleted", "other"]
    name: str
    parent_id: str | None
    meta: Item  # for files: size, hashes, key, etag, modified


def _entry(item: dict[str, Any]) -> _Entry:
    item_id, name = str(item.get("id", "")), str(item.get("name", ""))
    parent = (item.get("parentReference") or {}).get("id")
    if "deleted" in item:
        return _Entry(item_id, "deleted", name, parent, {})
    if "folder" in item or "root" in item:
        return _Entry(item_id, "folder", name, parent, {})
    if "file" not in item:
        return _Entry(item_id, "other", name, parent, {})
    given = (item.get("file") or {}).get("hashes") or {}
    hashes = {k: str(given[k]) for k in ("quickXorHash", "sha1Hash", "sha256Hash") if given.get(k)}
    size, modified = int(item.get("size") or 0), item.get("lastModifiedDateTime")
    meta = {
        "size": size,
        "hashes": hashes,
        "key": _content_key(hashes, item.get("cTag"), size, modified),
        "etag": item.get("eTag"),
        "modified": modified,
    }
    return _Entry(item_id, "file", name, parent, meta)


def _content_key(hashes: dict[str, str], ctag: str | None, size: int, modified: str | None) -> str:
    """What changes exactly when the bytes change: a content hash, else the cTag, else size + time."""
    for name in ("quickXorHash", "sha256Hash", "sha1Hash"):
        if hashes.get(name):
            return f"{name}:{hashes[name]}"
    return f"cTag:{ctag}" if ctag else f"size:{size}:{modified}"


def _local_name(item_id: str, name: str) -> str:
    """Mirror file name: the item id (stable across renames and moves) plus the photo's suffix."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", item_id)
    if safe != item_id:
        safe = f"{safe}-{hashlib.sha1(item_id.encode()).hexdigest()[:8]}"
    return safe + PurePosixPath(name).suffix.lower()


def _reaches(parent: str | None, folders: dict[str, list[Any]], scope_id: str, recursive: bool) -> bool:
    if not recursive:
        return parent == scope_id
    seen: set[str] = set()
    while parent is not None and parent not in seen:
        if parent == scope_id:
            return True
        seen.add(parent)
        node = folders.get(parent)
        parent = node[1] if node else None
    return False


def _relative_path(item: Item, folders: dict[str, list[Any]], scope_id: str) -> str:
    parts = [item["name"]]
    parent, hops = item.get("parent"), 0
    while parent is not None and parent != scope_id and parent in folders and hops < 256:
        parts.append(folders[parent][0])
        parent, hops = folders[parent][1], hops + 1
    return "/".join(reversed(parts))


# --------------------------------------------------------------------------------------------
# Streaming downloads from the pre-authenticated URL.


class _DownloadError(Exception):
    """One attempt at one file failed in a way worth retrying; the message names no URL."""

    def __init__(self, reason: str, delay: float | None = None) -> None:
        super().__init__(reason)
        self.delay = delay


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
    sha256, verifier, received = hashlib.sha256(), _Verifier(meta.get("hashes", {})), 0
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


def _intact(path: Path, size: int) -> bool:
    try:
        return path.stat().st_size == size
    except OSError:
        return False


def _adopt_existing(path: Path, meta: Item) -> str | None:
    """sha256 of a mirror file that already holds exactly the announced bytes (resume), else None."""
    try:
        if path.stat().st_size != int(meta["size"]):
            return None
    except OSError:
        return None
    sha256, verifier = hashlib.sha256(), _Verifier(meta.get("hashes", {}))
    if not verifier.name:
        return None  # size alone is too weak to trust an old file
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            sha256.update(block)
            verifier.update(block)
    return sha256.hexdigest() if verifier.matches() else None


# --------------------------------------------------------------------------------------------
# Graph access.


class _ThreadedCredential:
    """Runs a blocking azure-identity credential off the event loop the SDK calls it from."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    async def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        if inspect.iscoroutinefunction(self._inner.get_token):  # an azure.identity.aio credential
            return await self._inner.get_token(*scopes, **kwargs)
        return await asyncio.to_thread(self._inner.get_token, *scopes, **kwargs)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """Loading the CA bundle costs ~0.1 s; a sensor polling every minute should pay it once."""
    return httpx.create_ssl_context()


@contextlib.asynccontextmanager
async def _graph_client(credential: Any, base_url: str) -> AsyncIterator[GraphServiceClient]:
    client = httpx.AsyncClient(timeout=httpx.Timeout(100.0, connect=30.0), http2=True, verify=_tls_context())
    http = GraphClientFactory.create_with_default_middleware(client=client, options=dict(graph_adapter_options))
    adapter = GraphRequestAdapter(AzureIdentityAuthenticationProvider(credential, scopes=list(SCOPES)), client=http)
    adapter.base_url = base_url.rstrip("/")
    try:
        yield GraphServiceClient(request_adapter=adapter)
    finally:
        await http.aclose()


class _DeltaExpiredError(Exception):
    """The delta link is too old (HTTP 410): only a full listing helps."""


class _GraphStatusError(OneDriveError):
    """Graph answered an error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _RequestBuilder(Protocol):
    def get(self, request_configuration: Any = None) -> Awaitable[Any]: ...


async def _get_json(builder: _RequestBuilder, what: str) -> dict[str, Any]:
    """GET through an SDK request builder and return the JSON body as plain dicts.

    The SDK still builds the URL, authenticates, retries 429/503/504 after Retry-After and follows
    redirects; only its model parsing is skipped: msgraph-sdk 1.65 spends ~15-20 ms per DriveItem
    (Entity.get_field_deserializers re-imports thousands of names each call), 20 s per 1,000 items.
    """
    native: RequestConfiguration[Any] = RequestConfiguration(options=[ResponseHandlerOption(NativeResponseHandler())])
    response: httpx.Response = await builder.get(request_configuration=native)
    status = response.status_code
    if status == 200:
        body = response.json()
        return body if isinstance(body, dict) else {}
    if status == 401:
        raise LoginRequiredError(f"Microsoft Graph rejected the OneDrive login: {LOGIN_HINT}.")
    if status == 410:
        raise _DeltaExpiredError()
    try:
        code = str(response.json().get("error", {}).get("code", ""))
    except ValueError:
        code = ""
    raise _GraphStatusError(status, f"Microsoft Graph answered HTTP {status} {code} while {what}".replace("  ", " "))


@dataclass(frozen=True)
class _FetchContext:
    graph: GraphServiceClient
    pool: httpcore.ConnectionPool
    workers: ThreadPoolExecutor
    scope: _Scope


@dataclass(frozen=True)
class _Scope:
    drive_id: str
    folder_id: str

    def key(self, recursive: bool) -> str:
        return f"{self.drive_id}/{self.folder_id}/{'recursive' if recursive else 'flat'}"


# --------------------------------------------------------------------------------------------
# The source.


class OneDriveSource:
    """Mirrors `settings.folder` of the signed-in user's OneDrive into `mirror_dir`.

    `credential`: any object with `get_token(*scopes, **kwargs)`; None loads the saved login
    (see `onedrive_auth.login`) when a sync or poll starts.
    """

    def __init__(self, settings: OneDriveSettings, mirror_dir: Path, state_dir: Path, credential: Any = None) -> None:
        self.settings = settings
        self.mirror_dir = Path(mirror_dir)
        self.state_dir = Path(state_dir)
        self._credential = credential
        self.description = f"onedrive:{settings.folder}" + ("" if settings.recursive else " (top level only)")

    # -- PhotoSource ---------------------------------------------------------------------------

    def sync(self) -> SyncReport:
        """Bring the mirror up to date through the delta API and list every photo with its status."""
        self.mirror_dir.mkdir(parents=True, exist_ok=True)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with _exclusive(self.state_dir / f"{_STATE_NAME}.lock"):
            return _run(self._sync)

    def check_for_changes(self, cursor: str | None) -> ChangeCheck:
        """Poll the delta API with the poll's own delta link (kept in the cursor); downloads nothing."""
        return _run(lambda: self._poll(cursor))

    # -- sync ----------------------------------------------------------------------------------

    async def _sync(self) -> SyncReport:
        store = SyncStateStore(self.state_dir, _STATE_NAME)
        notes: list[str] = []
        try:
            state = store.load()
        except (OSError, ValueError, TypeError) as error:
            state = {}
            notes.append(f"The OneDrive sync state was unreadable ({type(error).__name__}): listed everything again.")
        old_items: dict[str, Item] = state.get("items", {})
        try:
            async with self._graph() as graph:
                scope = await self._resolve_scope(graph)
                scope_key = scope.key(self.settings.recursive)
                link: str | None = state.get("delta_link")
                folders: dict[str, list[Any]] = state.get("folders", {})
                if state.get("scope") != scope_key:
                    if state.get("scope"):
                        notes.append("The OneDrive folder or its settings changed: listed everything again.")
                    link, folders = None, {}
                try:
                    entries, new_link = await self._read_delta(graph, scope, link)
                except _DeltaExpiredError:
                    notes.append("The saved OneDrive delta token had expired (HTTP 410): full resync; "
                                 "photos missing from the new listing were removed.")
                    link = None
                    entries, new_link = await self._read_delta(graph, scope, None)
                folders, items = _apply_delta(old_items, folders, entries, link is None, scope.folder_id,
                                              self.settings)
                for item in items.values():  # a mirror file deleted or damaged by hand is fetched again
                    if item["status"] == "ok" and not _intact(self.mirror_dir / item["local"], int(item["size"])):
                        item.update(status="pending", local=None, sha256=None)
                self._remove_local(old_items, items)
                await self._download(graph, scope, items, store)
        finally:
            store.close()
        store.commit({"version": _STATE_VERSION, "scope": scope_key, "delta_link": new_link,
                      "folders": folders, "items": items})
        # What changed is told against the last finished sync: a killed run reported nothing.
        return self._report(store.committed_items, items, folders, scope.folder_id, notes)

    async def _read_delta(self, graph: GraphServiceClient, scope: _Scope, link: str | None
                          ) -> tuple[list[_Entry], str]:
        builder = graph.drives.by_drive_id(scope.drive_id).items.by_drive_item_id(scope.folder_id).delta
        entries: list[_Entry] = []
        url = link
        while True:
            page_builder = builder.with_url(url) if url else builder
            page = await _get_json(page_builder, "listing changes")
            entries.extend(_entry(item) for item in page.get("value") or [] if isinstance(item, dict))
            url = page.get("@odata.nextLink")
            if url:
                continue
            if not page.get("@odata.deltaLink"):
                raise OneDriveError("Microsoft Graph ended a delta listing without a delta link")
            return entries, str(page["@odata.deltaLink"])

    def _remove_local(self, old_items: dict[str, Item], items: dict[str, Item]) -> None:
        """Delete mirror files whose item is gone or no longer downloadable (too big, renamed away)."""
        for item_id, old in old_items.items():
            new = items.get(item_id)
            if old.get("local") and (new is None or new.get("local") != old["local"]):
                (self.mirror_dir / old["local"]).unlink(missing_ok=True)
        for stray in self.mirror_dir.glob(".*.part"):
            stray.unlink(missing_ok=True)

    async def _download(self, graph: GraphServiceClient, scope: _Scope, items: dict[str, Item],
                        store: SyncStateStore) -> None:
        """Fetch every "pending" item, at most `max_concurrency` at once, journaling each outcome."""
        pending = [item_id for item_id, item in items.items() if item["status"] == "pending"]
        logger.info("OneDrive sync: %d photos listed, %d to download", len(items), len(pending))
        if not pending:
            return
        width = max(1, self.settings.max_concurrency)
        limit = asyncio.Semaphore(width)
        with httpcore.ConnectionPool(max_connections=width, retries=0) as pool, \
                ThreadPoolExecutor(max_workers=width, thread_name_prefix="onedrive-download") as workers:
            context = _FetchContext(graph, pool, workers, scope)

            async def one(item_id: str) -> None:
                async with limit:
                    outcome = await self._fetch(context, item_id, items[item_id])
                items[item_id] = {**items[item_id], **outcome}
                store.record(item_id, items[item_id])

            try:
                async with asyncio.TaskGroup() as group:
                    for item_id in pending:
                        group.create_task(one(item_id))
            except BaseExceptionGroup as errors:  # e.g. the login expired: stop, and say why plainly
                raise errors.exceptions[0] from None

    async def _fetch(self, context: _FetchContext, item_id: str, item: Item) -> Item:
        """Download one photo with retries; its outcome (ok/failed) as fields of its state."""
        loop = asyncio.get_running_loop()
        final = self.mirror_dir / _local_name(item_id, item["name"])
        adopted = await loop.run_in_executor(context.workers, _adopt_existing, final, item)
        if adopted is not None:
            return {"status": "ok", "reason": "", "local": final.name, "sha256": adopted}
        temp = self.mirror_dir / f".{final.name}.part"
        attempts, reason = max(1, self.settings.max_attempts), ""
        for attempt in range(1, attempts + 1):
            delay = _RETRY_BACKOFF_S * 2 ** (attempt - 1)
            try:
                url, now = await self._current(context.graph, context.scope, item_id)  # may have changed
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

    async def _current(self, graph: GraphServiceClient, scope: _Scope, item_id: str) -> tuple[str, Item]:
        """The item as Graph describes it now, with its pre-authenticated download URL.

        The URL is read from the JSON body (`@microsoft.graph.downloadUrl`), not from the Location
        of a 302 on /content: httpcore logs response headers at DEBUG, so a Location would leak.
        """
        builder = graph.drives.by_drive_id(scope.drive_id).items.by_drive_item_id(item_id)
        try:
            item = await _get_json(builder, "reading the item")
        except _GraphStatusError as error:
            raise _DownloadError(f"Graph answered HTTP {error.status} for the item") from None
        url = item.get("@microsoft.graph.downloadUrl")
        if not isinstance(url, str) or "file" not in item:
            raise _DownloadError("Graph gave no download URL for the item")
        return url, _entry(item).meta

    def _report(self, old_items: dict[str, Item], items: dict[str, Item], folders: dict[str, list[Any]],
                scope_id: str, notes: list[str]) -> SyncReport:
        photos, added, changed = [], [], []
        removed = sorted(set(old_items) - set(items))
        for item_id, item in items.items():
            ok = item["status"] == "ok"
            photos.append(PhotoRecord(
                source_id=item_id,
                name=_relative_path(item, folders, scope_id),
                path=self.mirror_dir / item["local"] if ok and item.get("local") else None,
                size=int(item["size"]),
                sha256=item.get("sha256") if ok else None,
                status=item["status"],
                reason=item.get("reason", ""),
                modified=item.get("modified"),
            ))
            old = old_items.get(item_id)
            if ok and (old is None or old.get("status") != "ok"):
                added.append(item_id)
            elif ok and old is not None and old.get("key") != item["key"]:
                changed.append(item_id)
        failed = sum(1 for p in photos if p.status == "failed")
        if failed:
            notes.append(f"{failed} photo(s) could not be downloaded; they are retried on the next sync.")
        photos.sort(key=lambda p: (p.name, p.source_id))
        logger.info("OneDrive sync done: %d photos, %d added, %d changed, %d removed, %d failed",
                    len(photos), len(added), len(changed), len(removed), failed)
        return SyncReport(source=self.description, photos=tuple(photos), added=tuple(sorted(added)),
                          changed=tuple(sorted(changed)), removed=tuple(removed), notes=tuple(notes))

    # -- poll ----------------------------------------------------------------------------------

    async def _poll(self, cursor: str | None) -> ChangeCheck:
        saved = _parse_cursor(cursor)
        async with self._graph() as graph:
            if saved is not None and saved.get("folder") == self.settings.folder \
                    and saved.get("recursive") == self.settings.recursive:
                scope = _Scope(saved["drive_id"], saved["folder_id"])
                try:
                    entries, link = await self._read_delta(graph, scope, saved["delta_link"])
                except _DeltaExpiredError:
                    return await self._fresh_cursor(graph, scope, "the poll's delta token expired; assuming changes")
                changes = sum(1 for entry in entries if self._is_photo_change(entry, scope))
                return ChangeCheck(changed=changes > 0, cursor=self._cursor(scope, link),
                                   summary=f"{changes} photo change(s) in OneDrive {self.settings.folder}")
            return await self._fresh_cursor(graph, await self._resolve_scope(graph), "first poll")

    async def _fresh_cursor(self, graph: GraphServiceClient, scope: _Scope, why: str) -> ChangeCheck:
        builder = graph.drives.by_drive_id(scope.drive_id).items.by_drive_item_id(scope.folder_id)
        latest = builder.delta_with_token("latest")
        page = await _get_json(latest, "asking for the latest delta token")
        if not page.get("@odata.deltaLink"):
            raise OneDriveError("Microsoft Graph gave no delta link for token=latest")
        return ChangeCheck(changed=True, cursor=self._cursor(scope, str(page["@odata.deltaLink"])), summary=why)

    def _is_photo_change(self, entry: _Entry, scope: _Scope) -> bool:
        if entry.kind == "deleted":
            return not entry.name or PurePosixPath(entry.name).suffix.lower() in self.settings.suffix_set()
        if entry.kind != "file" or PurePosixPath(entry.name).suffix.lower() not in self.settings.suffix_set():
            return False
        return self.settings.recursive or entry.parent_id == scope.folder_id

    def _cursor(self, scope: _Scope, link: str) -> str:
        return json.dumps({"folder": self.settings.folder, "recursive": self.settings.recursive,
                           "drive_id": scope.drive_id, "folder_id": scope.folder_id, "delta_link": link})

    # -- shared --------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _graph(self) -> AsyncIterator[GraphServiceClient]:
        credential = self._credential
        if credential is None:
            credential = load_credential(self.settings, resolve_auth_dir(self.settings, self.state_dir))
        try:
            async with _graph_client(_ThreadedCredential(credential), self.settings.graph_base_url) as graph:
                yield graph
        except ClientAuthenticationError as error:
            raise LoginRequiredError(
                f"OneDrive needs a fresh login ({type(error).__name__}): {LOGIN_HINT}."
            ) from error

    async def _resolve_scope(self, graph: GraphServiceClient) -> _Scope:
        drive = await _get_json(graph.me.drive, "reading the signed-in user's drive")
        drive_id = str(drive.get("id") or "")
        if not drive_id:
            raise OneDriveError("Microsoft Graph returned no drive for the signed-in user")
        drive_builder = graph.drives.by_drive_id(drive_id)
        folder = self.settings.folder.strip()
        if folder.lower().startswith("special:"):
            folder_builder: Any = drive_builder.special.by_drive_item_id(folder.split(":", 1)[1])
        elif not folder.strip("/"):
            folder_builder = drive_builder.root
        else:
            path = "/".join(quote(part, safe="") for part in folder.strip("/").split("/") if part)
            base = self.settings.graph_base_url.rstrip("/")
            folder_builder = drive_builder.root.with_url(f"{base}/drives/{quote(drive_id, safe='!')}/root:/{path}:")
        try:
            item = await _get_json(folder_builder, f"looking up {folder!r}")
        except _GraphStatusError as error:
            if error.status == 404:
                raise OneDriveError(f"There is no folder {folder!r} in this OneDrive") from None
            raise
        if not item.get("id") or ("folder" not in item and "root" not in item):
            raise OneDriveError(f"{folder!r} is not a folder in this OneDrive")
        return _Scope(drive_id, str(item["id"]))


def _apply_delta(old_items: dict[str, Item], old_folders: dict[str, list[Any]], entries: list[_Entry],
                 full: bool, scope_id: str, settings: OneDriveSettings
                 ) -> tuple[dict[str, list[Any]], dict[str, Item]]:
    """The folders and photos after `entries`; photos to fetch get status "pending".

    Delta entries repeat (the last one wins), carry no paths, and a deleted folder may come without
    its children: membership is decided by walking parent ids up to the synced folder.
    """
    latest: dict[str, _Entry] = {}
    for entry in entries:
        if entry.id and entry.id != scope_id:
            latest.pop(entry.id, None)
            latest[entry.id] = entry
    folders = {} if full else dict(old_folders)
    for entry in latest.values():
        if entry.kind == "folder":
            folders[entry.id] = [entry.name, entry.parent_id]
        elif entry.kind == "deleted":
            folders.pop(entry.id, None)
    folders[scope_id] = ["", None]
    folders = {fid: node for fid, node in folders.items()
               if fid == scope_id or _reaches(node[1], folders, scope_id, True)}

    candidates: dict[str, Item] = {} if full else {
        item_id: item for item_id, item in old_items.items() if item_id not in latest
    }
    for entry in latest.values():
        if entry.kind == "file":
            candidates[entry.id] = {"name": entry.name, "parent": entry.parent_id, **entry.meta}

    suffixes, max_bytes = settings.suffix_set(), int(settings.max_file_mb * _MB)
    items: dict[str, Item] = {}
    for item_id, meta in candidates.items():
        if PurePosixPath(meta["name"]).suffix.lower() not in suffixes:
            continue
        if not _reaches(meta.get("parent"), folders, scope_id, settings.recursive):
            continue
        items[item_id] = {**meta, **_decide(meta, old_items.get(item_id), settings, max_bytes)}
    return folders, items


def _decide(meta: Item, old: Item | None, settings: OneDriveSettings, max_bytes: int) -> Item:
    """Skipped (size limits), ok (same content already mirrored) or pending (to download)."""
    size = int(meta["size"])
    if size > max_bytes:
        return {"status": "skipped", "local": None, "sha256": None,
                "reason": f"{size / _MB:.1f} MB is over max_file_mb={settings.max_file_mb:g}"}
    if size < settings.min_file_bytes:
        return {"status": "skipped", "local": None, "sha256": None,
                "reason": f"{size} bytes is under min_file_bytes={settings.min_file_bytes}"}
    if old is not None and old.get("status") == "ok" and old.get("key") == meta["key"] and old.get("local"):
        return {"status": "ok", "reason": "", "local": old["local"], "sha256": old.get("sha256")}
    return {"status": "pending", "reason": "", "local": None, "sha256": None}


def _parse_cursor(cursor: str | None) -> dict[str, Any] | None:
    if not cursor:
        return None
    try:
        saved = json.loads(cursor)
    except ValueError:
        return None
    keys = ("folder", "recursive", "drive_id", "folder_id", "delta_link")
    return saved if isinstance(saved, dict) and all(k in saved for k in keys) else None


def _run(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion, also when called from code that already runs an event loop."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is None:
        return asyncio.run(make())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """One sync per state folder at a time: a second one fails fast instead of corrupting the state."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; syncs must not overlap
        yield
        return
    with open(lock_path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            raise OneDriveError(f"Another OneDrive sync is running on {lock_path.parent}") from error
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
