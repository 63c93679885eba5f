"""A fake Microsoft Graph drive and a separate download host, over real HTTP on loopback.

The real msgraph-sdk talks to it (base URL override), so the tests exercise the SDK's URL shapes,
paging, redirects and retries. It mimics what personal OneDrive does: delta listings per folder
with @odata.nextLink paging and a final @odata.deltaLink, items repeated within one delta, no
parentReference.path in delta, a deleted folder reported without its children, 410 for expired
delta tokens, and file items carrying a pre-authenticated @microsoft.graph.downloadUrl on
another host (127.0.0.2), which /content also redirects to. Faults (throttling, truncated or
corrupted bodies, dropped connections, held downloads) are injected per item. Every request is
recorded. Also used by the benchmark.
"""

from __future__ import annotations

import hashlib
import json
import random
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from facecraft_pipeline.sources.onedrive import QuickXorHash

DOWNLOAD_HOST = "127.0.0.2"  # loopback too, but a different host from the Graph one


@dataclass
class _Blob:
    """File content: literal bytes, or `size` bytes generated from `seed` without holding them."""

    size: int
    data: bytes | None = None
    seed: int = 0

    def chunks(self, chunk: int = 1 << 20) -> Iterator[bytes]:
        if self.data is not None:
            for start in range(0, self.size, chunk):
                yield self.data[start:start + chunk]
            return
        block = random.Random(self.seed).randbytes(min(chunk, max(self.size, 1)))
        left = self.size
        while left > 0:
            piece = block[: min(left, len(block))]
            left -= len(piece)
            yield piece


@dataclass
class _Node:
    id: str
    name: str
    parent: str | None
    folder: bool
    blob: _Blob | None = None
    version: int = 1
    hash_kinds: tuple[str, ...] = ("quickXorHash",)
    hashes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Recorded:
    host: str  # "graph" or "download"
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names in lower case
    at: float  # time.monotonic() when the request arrived


@dataclass(frozen=True)
class _Change:
    seq: int
    node_id: str
    snapshot: dict[str, Any] | None  # None: deleted
    ancestors_before: frozenset[str]
    ancestors_after: frozenset[str]


class FakeGraph:
    """Start with `with FakeGraph() as fake:`; `fake.base_url` is the Graph base URL to configure."""

    def __init__(self, page_size: int = 50, token: str = "fake-access-token-7f3a") -> None:
        self.token = token
        self.page_size = page_size
        self.drive_id = "fakedrive01"
        self.root_id = "ROOT!0"
        self.special: dict[str, str] = {}
        self.download_secret = "dlsecret-" + secrets.token_hex(12)
        self.requests: list[Recorded] = []
        self.auth_leaks: list[str] = []  # download requests that carried an Authorization header
        self._lock = threading.RLock()
        self._held = threading.Condition(self._lock)
        self._release = threading.Event()
        self._hold_after: int | None = None
        self._held_count = 0
        self._nodes: dict[str, _Node] = {self.root_id: _Node(self.root_id, "root", None, True)}
        self._log: list[_Change] = []
        self._seq = 0
        self._next_id = 100
        self._expired_below = 0
        self._download_faults: dict[str, list[tuple[Any, ...]]] = {}
        self._persistent_faults: dict[str, tuple[Any, ...]] = {}
        self._graph_faults: list[tuple[str, int, int]] = []
        self._completed: dict[str, int] = {}
        self._in_flight = 0
        self.max_in_flight = 0  # most download bodies ever streamed at the same time
        self._servers: list[ThreadingHTTPServer] = []

    # -- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> FakeGraph:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._graph_server = self._serve("127.0.0.1", "graph")
        self._download_server = self._serve(DOWNLOAD_HOST, "download")

    def stop(self) -> None:
        self._release.set()
        for server in self._servers:
            server.shutdown()
            server.server_close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._graph_server.server_address[1]}/v1.0"

    def _serve(self, host: str, role: str) -> ThreadingHTTPServer:
        fake = self

        class Handler(_Handler):
            pass

        Handler.fake, Handler.role = fake, role
        server = ThreadingHTTPServer((host, 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self._servers.append(server)
        return server

    # -- the drive -------------------------------------------------------------------------------

    def add_folder(self, name: str, parent: str | None = None, special: str | None = None) -> str:
        with self._lock:
            node = _Node(self._new_id(), name, parent or self.root_id, True)
            self._nodes[node.id] = node
            if special:
                self.special[special] = node.id
            self._changed(node.id, frozenset())
            return node.id

    def add_file(self, name: str, parent: str | None = None, content: bytes | None = None, size: int | None = None,
                 seed: int = 0, hash_kinds: tuple[str, ...] = ("quickXorHash",)) -> str:
        """A file with literal `content`, or `size` bytes generated from `seed`."""
        with self._lock:
            node = _Node(self._new_id(), name, parent or self.root_id, False, hash_kinds=hash_kinds)
            self._nodes[node.id] = node
            self._set_blob(node, content, size, seed)
            self._changed(node.id, frozenset())
            return node.id

    def update_file(self, item_id: str, content: bytes | None = None, size: int | None = None, seed: int = 0) -> None:
        with self._lock:
            node = self._nodes[item_id]
            before = self._ancestors(item_id)
            self._set_blob(node, content, size, seed)
            node.version += 1
            self._changed(item_id, before)

    def move(self, item_id: str, parent: str | None = None, name: str | None = None) -> None:
        with self._lock:
            node = self._nodes[item_id]
            before = self._ancestors(item_id)
            node.parent = parent or node.parent
            node.name = name or node.name
            node.version += 1
            self._changed(item_id, before)

    def delete(self, item_id: str) -> None:
        """Like personal OneDrive: deleting a folder reports the folder only, not its children."""
        with self._lock:
            before = self._ancestors(item_id)
            doomed = [item_id] + [n for n in self._nodes if item_id in self._ancestors(n)]
            for node_id in doomed:
                self._nodes.pop(node_id, None)
            self._seq += 1
            self._log.append(_Change(self._seq, item_id, None, before, frozenset()))

    def content_of(self, item_id: str) -> bytes:
        blob = self._nodes[item_id].blob
        assert blob is not None
        return b"".join(blob.chunks())

    # -- faults and observations -----------------------------------------------------------------

    def fail_download(self, item_id: str, *faults: tuple[Any, ...], always: bool = False) -> None:
        """Faults for the next download requests of one item, in order (or every request: `always`).

        ("status", 429 | 503, retry_after_s), ("truncate",), ("short",), ("corrupt",), ("drop",),
        ("stall",): send the headers and half the body, then nothing until release() (counted by
        wait_until_held), then close.
        """
        with self._lock:
            if always:
                self._persistent_faults[item_id] = faults[0]
            else:
                self._download_faults.setdefault(item_id, []).extend(faults)

    def set_hashes(self, item_id: str, hash_kinds: tuple[str, ...]) -> None:
        """Graph (re)computes an item's hashes, e.g. some time after an upload: no new version, no delta change."""
        with self._lock:
            node = self._nodes[item_id]
            node.hash_kinds = hash_kinds
            self._set_blob(node, node.blob.data, node.blob.size, node.blob.seed)  # type: ignore[union-attr]

    def clear_faults(self, item_id: str) -> None:
        with self._lock:
            self._persistent_faults.pop(item_id, None)
            self._download_faults.pop(item_id, None)

    def throttle_graph(self, route: str, status: int = 429, retry_after: int = 1, times: int = 1) -> None:
        """Answer the next `times` Graph requests of `route` with `status`.

        Routes: "delta", "item" (GET /items/{id}), "content" (/items/{id}/content), "drive" (the rest).
        """
        with self._lock:
            self._graph_faults.extend([(route, status, retry_after)] * times)

    def expire_delta_tokens(self) -> None:
        """Every delta link handed out so far now answers 410 Gone."""
        with self._lock:
            self._seq += 1  # links handed out from now on carry newer tokens
            self._expired_below = self._seq

    def hold_downloads_after(self, completed: int) -> None:
        """Once `completed` downloads have been served, hold further download requests until release()."""
        with self._lock:
            self._hold_after = completed

    def wait_until_held(self, count: int, timeout: float = 30.0) -> bool:
        with self._held:
            return self._held.wait_for(lambda: self._held_count >= count, timeout)

    def release(self) -> None:
        with self._lock:
            self._hold_after = None
        self._release.set()

    def downloads(self, item_id: str | None = None) -> int:
        """Completed (full-body) downloads of one item, or of all items."""
        with self._lock:
            return self._completed.get(item_id, 0) if item_id else sum(self._completed.values())

    def graph_requests(self, contains: str = "") -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.host == "graph" and contains in r.path]

    def download_requests(self, item_id: str | None = None) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests
                    if r.host == "download" and (item_id is None or r.path == f"/dl/{item_id}")]

    # -- internals -------------------------------------------------------------------------------

    def _new_id(self) -> str:
        self._next_id += 1
        return f"FAKE!{self._next_id}"

    def _set_blob(self, node: _Node, content: bytes | None, size: int | None, seed: int) -> None:
        blob = _Blob(len(content), data=content) if content is not None else _Blob(int(size or 0), seed=seed)
        hashers: dict[str, Any] = {"quickXorHash": QuickXorHash(), "sha1Hash": hashlib.sha1(),
                                   "sha256Hash": hashlib.sha256()}
        wanted = {kind: hashers[kind] for kind in node.hash_kinds}
        for chunk in blob.chunks():
            for hasher in wanted.values():
                hasher.update(chunk)
        node.blob = blob
        node.hashes = {kind: (h.b64digest() if isinstance(h, QuickXorHash) else h.hexdigest().upper())
                       for kind, h in wanted.items()}

    def _ancestors(self, node_id: str) -> frozenset[str]:
        out, node = set(), self._nodes.get(node_id)
        while node is not None and node.parent is not None:
            out.add(node.parent)
            node = self._nodes.get(node.parent)
        return frozenset(out)

    def _changed(self, node_id: str, before: frozenset[str]) -> None:
        """Log a change, and (as OneDrive does) its ancestor folders, whose size changed too."""
        chain = [node_id] + [a for a in self._walk_up(node_id)]
        for changed_id in chain:
            self._seq += 1
            after = self._ancestors(changed_id)
            self._log.append(_Change(self._seq, changed_id, self._json(changed_id, in_delta=True),
                                     before if changed_id == node_id else after, after))

    def _walk_up(self, node_id: str) -> Iterator[str]:
        node = self._nodes[node_id]
        while node.parent is not None:
            yield node.parent
            node = self._nodes[node.parent]

    def _path_of(self, node_id: str) -> str:
        names, node = [], self._nodes[node_id]
        while node.parent is not None:
            names.append(node.name)
            node = self._nodes[node.parent]
        return "/".join(reversed(names))

    def _json(self, node_id: str, in_delta: bool) -> dict[str, Any]:
        node = self._nodes[node_id]
        out: dict[str, Any] = {
            "id": node.id,
            "name": node.name,
            "eTag": f'"{{{node.id}}},{node.version}"',
            "cTag": f'"c:{{{node.id}}},{node.version}"',
            "lastModifiedDateTime": f"2024-05-01T10:{node.version % 60:02d}:00Z",
            "size": node.blob.size if node.blob else 0,
        }
        if node.parent is not None:
            ref: dict[str, Any] = {"driveId": self.drive_id, "driveType": "personal", "id": node.parent}
            if not in_delta:
                parent_path = self._path_of(node.parent)
                ref["path"] = "/drive/root:" + (f"/{parent_path}" if parent_path else "")
            out["parentReference"] = ref
        if node.id == self.root_id:
            out["root"] = {}
        if node.folder:
            out["folder"] = {"childCount": sum(1 for n in self._nodes.values() if n.parent == node.id)}
        else:
            out["file"] = {"mimeType": "application/octet-stream", "hashes": dict(node.hashes)}
            if not in_delta:
                out["@microsoft.graph.downloadUrl"] = self._download_url(node.id)
        return out

    def _download_url(self, item_id: str) -> str:
        host, port = self._download_server.server_address[:2]
        return f"http://{host}:{port}/dl/{item_id}?tempauth={self.download_secret}"

    def _delta(self, folder_id: str, token: str | None, skip: int, upto: int | None) -> tuple[int, dict[str, Any]]:
        with self._lock:
            if folder_id not in self._nodes or not self._nodes[folder_id].folder:
                return 404, _error("itemNotFound", "The resource could not be found.")
            if token is not None and int(token) < self._expired_below:
                return 410, _error("resyncRequired", "Resync required. Replace local items with the server's.")
            upto = self._seq if upto is None else upto
            if token is None:
                listing = [self._json(folder_id, in_delta=True)] + [
                    self._json(n, in_delta=True) for n in self._descendants(folder_id)]
            else:
                listing = []
                for change in self._log:
                    if not int(token) < change.seq <= upto:
                        continue
                    if change.node_id == folder_id or (folder_id in change.ancestors_after and change.snapshot):
                        listing.append(change.snapshot if change.snapshot else _deleted(change.node_id))
                    elif folder_id in change.ancestors_before:
                        listing.append(_deleted(change.node_id))
            page = listing[skip: skip + self.page_size]
            base = f"{self.base_url}/drives/{self.drive_id}/items/{folder_id}/delta"
            body: dict[str, Any] = {"value": page}
            if skip + self.page_size < len(listing):
                tok = "" if token is None else token
                body["@odata.nextLink"] = f"{base}?token={tok}&skip={skip + self.page_size}&upto={upto}"
            else:
                body["@odata.deltaLink"] = f"{base}?token={upto}"
            return 200, body

    def _descendants(self, folder_id: str) -> list[str]:
        out: list[str] = []
        stack = [folder_id]
        while stack:
            current = stack.pop()
            for node in self._nodes.values():
                if node.parent == current:
                    out.append(node.id)
                    if node.folder:
                        stack.append(node.id)
        return out

    def _by_path(self, path: str) -> str | None:
        node_id = self.root_id
        for part in [p for p in path.strip("/").split("/") if p]:
            match = [n.id for n in self._nodes.values() if n.parent == node_id and n.name.lower() == part.lower()]
            if not match:
                return None
            node_id = match[0]
        return node_id

    def _graph_fault(self, route: str) -> tuple[int, int] | None:
        with self._lock:
            for i, (fault_route, status, retry_after) in enumerate(self._graph_faults):
                if fault_route == route:
                    del self._graph_faults[i]
                    return status, retry_after
        return None

    def _download_fault(self, item_id: str) -> tuple[Any, ...] | None:
        with self._lock:
            if item_id in self._persistent_faults:
                return self._persistent_faults[item_id]
            queue = self._download_faults.get(item_id)
            return queue.pop(0) if queue else None


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _deleted(node_id: str) -> dict[str, Any]:
    return {"id": node_id, "deleted": {"state": "deleted"}}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stalls
    fake: FakeGraph
    role: str

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        split = urlsplit(self.path)
        path = unquote(split.path)
        query = parse_qs(split.query)
        with self.fake._lock:
            headers = {k.lower(): v for k, v in self.headers.items()}
            self.fake.requests.append(Recorded(self.role, "GET", path, query, headers, time.monotonic()))
        try:
            if self.role == "download":
                self._download(path, query)
            else:
                self._graph(path, query)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # -- Graph -----------------------------------------------------------------------------------

    def _graph(self, path: str, query: dict[str, list[str]]) -> None:
        fake = self.fake
        if self.headers.get("Authorization") != f"Bearer {fake.token}":
            return self._json(401, _error("InvalidAuthenticationToken", "Access token is empty or invalid."))
        prefix = f"/v1.0/drives/{fake.drive_id}"
        route = ("delta" if "/delta" in path else "content" if path.endswith("/content")
                 else "item" if "/items/" in path else "drive")
        fault = fake._graph_fault(route)
        if fault:
            return self._json(fault[0], _error("activityLimitReached", "Throttled"), {"Retry-After": str(fault[1])})
        if path == "/v1.0/me/drive":
            return self._json(200, {"id": fake.drive_id, "driveType": "personal"})
        if not path.startswith(prefix):
            return self._json(404, _error("itemNotFound", f"no route for {path}"))
        rest = path[len(prefix):]
        if rest == "/root":
            return self._item(fake.root_id)
        if rest.startswith("/root:"):
            return self._item(fake._by_path(rest[len("/root:"):].rstrip(":")))
        if rest.startswith("/special/"):
            return self._item(fake.special.get(rest[len("/special/"):]))
        parts = rest.split("/")  # ["", "items", id, ...]
        if len(parts) < 3 or parts[1] != "items":
            return self._json(404, _error("itemNotFound", f"no route for {path}"))
        item_id, tail = parts[2], "/".join(parts[3:])
        if tail == "":
            return self._item(item_id)
        if tail == "delta(token='latest')":
            with fake._lock:
                base = f"{fake.base_url}/drives/{fake.drive_id}/items/{item_id}/delta"
                return self._json(200, {"value": [], "@odata.deltaLink": f"{base}?token={fake._seq}"})
        if tail in ("delta", "delta()"):  # the SDK sends delta(); nextLink/deltaLink come back as delta
            token = query.get("token", [None])[0] or None
            upto = query.get("upto", [None])[0]
            status, body = fake._delta(item_id, token, int(query.get("skip", ["0"])[0]),
                                       int(upto) if upto else None)
            return self._json(status, body)
        if tail == "content":
            with fake._lock:
                exists = item_id in fake._nodes and not fake._nodes[item_id].folder
            if not exists:
                return self._json(404, _error("itemNotFound", "The resource could not be found."))
            return self._send(302, b"", {"Location": fake._download_url(item_id)})
        return self._json(404, _error("itemNotFound", f"no route for {path}"))

    def _item(self, item_id: str | None) -> None:
        with self.fake._lock:
            if item_id is None or item_id not in self.fake._nodes:
                return self._json(404, _error("itemNotFound", "The resource could not be found."))
            body = self.fake._json(item_id, in_delta=False)
        self._json(200, body)

    # -- download host ---------------------------------------------------------------------------

    def _download(self, path: str, query: dict[str, list[str]]) -> None:
        fake = self.fake
        if "Authorization" in self.headers:
            with fake._lock:
                fake.auth_leaks.append(path)
            return self._json(400, _error("invalidRequest", "pre-authenticated URL got an Authorization header"))
        item_id = path.rsplit("/", 1)[-1]
        if query.get("tempauth", [""])[0] != fake.download_secret:
            return self._json(401, _error("unauthenticated", "bad tempauth"))
        if self._held_back():
            return None
        with fake._lock:
            node = fake._nodes.get(item_id)
            blob = node.blob if node else None
        if blob is None:
            return self._json(404, _error("itemNotFound", "gone"))
        fault = fake._download_fault(item_id)
        kind = fault[0] if fault else None
        if kind == "status":
            return self._json(fault[1], _error("throttled", "slow down"), {"Retry-After": str(fault[2])})
        if kind == "drop":
            self.close_connection = True
            return None
        if kind == "short":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"".join(blob.chunks())[: blob.size // 2])
            self.close_connection = True
            return None
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(blob.size))
        self.end_headers()
        with fake._lock:
            fake._in_flight += 1
            fake.max_in_flight = max(fake.max_in_flight, fake._in_flight)
        try:
            self._body(blob, kind, item_id)
        finally:
            with fake._lock:
                fake._in_flight -= 1

    def _body(self, blob: _Blob, kind: str | None, item_id: str) -> None:
        fake, sent = self.fake, 0
        if kind == "stall":
            self.wfile.write(b"".join(blob.chunks())[: blob.size // 2])
            self.wfile.flush()
            with fake._held:
                fake._held_count += 1
                fake._held.notify_all()
            fake._release.wait(timeout=120)
            self.close_connection = True
            return None
        for chunk in blob.chunks():
            if kind == "truncate" and sent + len(chunk) > blob.size // 2:
                self.wfile.write(chunk[: blob.size // 2 - sent])
                self.wfile.flush()
                self.close_connection = True
                return None
            if kind == "corrupt" and sent == 0:
                chunk = bytes([chunk[0] ^ 0xFF]) + chunk[1:]
            self.wfile.write(chunk)
            sent += len(chunk)
        self.wfile.flush()
        with fake._lock:
            fake._completed[item_id] = fake._completed.get(item_id, 0) + 1

    def _held_back(self) -> bool:
        """Hold the request until release(), then drop it unanswered (its client is presumed dead)."""
        fake = self.fake
        with fake._held:
            hold = fake._hold_after is not None and sum(fake._completed.values()) >= fake._hold_after
            if hold:
                fake._held_count += 1
                fake._held.notify_all()
        if hold:
            fake._release.wait(timeout=60)
            self.close_connection = True
        return hold

    # -- plumbing --------------------------------------------------------------------------------

    def _json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(body).encode(), {"Content-Type": "application/json", **(headers or {})})

    def _send(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
