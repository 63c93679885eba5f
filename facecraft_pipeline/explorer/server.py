"""`facecraft explore`: the explorer page on 127.0.0.1, standard library HTTP only.

Errors reach the page as {"error": "..."} with a 4xx status (bad input) or 500 (a bug: the
traceback goes to this process's stderr, never to the browser).
"""

from __future__ import annotations

import errno
import json
import mimetypes
import sys
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from facecraft_pipeline.explorer import gallery
from facecraft_pipeline.explorer.model import ExplorerError, registered_versions
from facecraft_pipeline.explorer.state import Explorer

STATIC = Path(__file__).parent / "static"
MAX_BODY = 1 << 20


def page(mode: str = "served", head: str = "") -> str:
    """index.html with the mode set; the static site adds its data scripts in `head`."""
    html = (STATIC / "index.html").read_text()
    return html.replace("<!--HEAD-->", f'<script>window.FACECRAFT_MODE = "{mode}";</script>\n{head}')


class Handler(BaseHTTPRequestHandler):
    explorer: Explorer  # set on the subclass made by `make_server`
    server_version = "FaceCraftExplorer"
    protocol_version = "HTTP/1.1"  # keep-alive: one connection for a slider drag, not one per frame
    disable_nagle_algorithm = True  # headers and body leave at once (Nagle + delayed ACK cost ~30 ms a frame)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet: one line per request is noise
        pass

    # -- replies ---------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, data: Any, status: int = 200) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _error(self, message: str, status: int = 400) -> None:
        self._json({"error": message}, status)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ExplorerError("request too large")
        try:
            return json.loads(self.rfile.read(length) or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ExplorerError("the request body is not JSON") from None

    def _guarded(self, route) -> None:
        try:
            route()
        except ExplorerError as error:
            self._error(str(error), HTTPStatus.BAD_REQUEST)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as error:  # noqa: BLE001 - the browser gets a sentence, stderr gets the traceback
            traceback.print_exc(file=sys.stderr)
            self._error(f"internal error ({type(error).__name__}); see the terminal running facecraft explore", 500)

    # -- routes ----------------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802
        self._guarded(self._get)

    def do_POST(self) -> None:  # noqa: N802
        self._guarded(self._post)

    def _get(self) -> None:
        path = unquote(urlparse(self.path).path)
        ex = self.explorer
        if path in ("/", "/index.html"):
            self._send(200, page().encode(), "text/html; charset=utf-8")
        elif path.startswith("/static/"):
            self._file(STATIC, path.removeprefix("/static/"))
        elif path == "/api/model":
            self._json(ex.payload())
        elif path == "/api/models":
            self._json({"versions": registered_versions(ex.home_root), "current": ex.require().uri})
        elif path == "/api/characters":
            self._json({"characters": ex.characters.list()})
        elif path == "/api/gallery":
            self._json(gallery.read_gallery(ex.home_root))
        elif path.startswith("/gallery/"):
            folder = gallery.newest_gallery(ex.home_root)
            if folder is None:
                raise ExplorerError("no gallery yet")
            self._file(folder, path.removeprefix("/gallery/"))
        elif path == "/favicon.ico":
            self._send(204, b"", "image/x-icon")
        else:
            self._error(f"no such page: {path}", 404)

    def _post(self) -> None:
        path = urlparse(self.path).path
        ex, body = self.explorer, self._body()
        if not isinstance(body, dict):
            raise ExplorerError("the request body must be a JSON object")
        if path == "/api/render":
            model = ex.require()
            pixels = ex.render(body.get("latent"), body.get("controls"), body.get("person"), body.get("t", 0.0))
            self._send(200, pixels, "application/octet-stream", {"X-Resolution": str(model.resolution)})
        elif path == "/api/load":
            uri = body.get("uri")
            if not isinstance(uri, str) or not uri.strip():
                raise ExplorerError("give a model URI (models:/NAME@ALIAS, models:/NAME/VERSION) or a checkpoint path")
            self._json(ex.load(uri.strip()))
        elif path == "/api/characters":
            self._json(ex.save_character(body))
        elif path == "/api/mix":
            self._json(ex.mix(body.get("a"), body.get("b"), body.get("seed")))
        else:
            self._error(f"no such action: {path}", 404)

    def _file(self, root: Path, relative: str) -> None:
        root = root.resolve()
        target = (root / relative).resolve()
        if root not in target.parents or not target.is_file():
            self._error(f"no such file: {relative}", 404)
            return
        kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        self._send(200, target.read_bytes(), kind)


def make_server(explorer: Explorer, host: str = "127.0.0.1", port: int = 8765) -> ThreadingHTTPServer:
    handler = type("ExplorerHandler", (Handler,), {"explorer": explorer})
    try:
        server = ThreadingHTTPServer((host, port), handler)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise ExplorerError(f"port {port} on {host} is in use: pass --port N (or set FACECRAFT_EXPLORER_PORT)") from None
        raise ExplorerError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    server.daemon_threads = True
    return server
