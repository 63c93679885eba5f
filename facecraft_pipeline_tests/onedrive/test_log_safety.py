"""No secret in any log at any level: HTTP/2 headers (hpack) and redirect Locations (httpcore).

Real records from the real loggers: an HTTP/2 server on loopback (h2, prior knowledge, which
httpx speaks with http1=False) answers a 302 whose Location is a pre-authenticated URL, to a
request carrying a bearer token; and the fake Graph's /content redirect over HTTP/1.1. Each case
first shows the secret *does* reach the logs without `log_safety`, so the test can fail.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterator

import h2.config
import h2.connection
import h2.events
import httpx
import pytest

from facecraft_pipeline import log_safety
from facecraft_pipeline_tests.onedrive.fake_graph import FakeGraph

TOKEN = "eyJ0eXAiOiJKV1Qi.secret-bearer-token-93f1"
TEMPAUTH = "tempauth-secret-5c2e"


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name} {record.getMessage()}")

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def every_logger_at_debug() -> Iterator[Callable[[], _Lines]]:
    """`capture()`: every logger set to DEBUG *now* (also after log_safety lowered some), all records kept."""
    manager = logging.Logger.manager
    saved = {name: logger.level for name, logger in manager.loggerDict.items() if isinstance(logger, logging.Logger)}
    root_level = logging.root.level
    handlers: list[_Lines] = []

    def capture() -> _Lines:
        for name in ("httpcore.http11", "httpcore.http2", "httpcore.connection", "hpack.hpack", "hpack.table"):
            logging.getLogger(name)
        for logger in list(manager.loggerDict.values()):
            if isinstance(logger, logging.Logger):
                logger.setLevel(logging.DEBUG)
        logging.root.setLevel(logging.DEBUG)
        for old in handlers:
            logging.root.removeHandler(old)
        handler = _Lines()
        handlers.append(handler)
        logging.root.addHandler(handler)
        return handler

    yield capture
    for handler in handlers:
        logging.root.removeHandler(handler)
    logging.root.setLevel(root_level)
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)
    log_safety.install()  # as the Definitions leave it


def _h2_server(location: str) -> tuple[int, threading.Thread]:
    """One-connection HTTP/2 server (prior knowledge) answering every request with a 302 to `location`."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn_sock, _ = listener.accept()
        conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        conn_sock.sendall(conn.data_to_send())
        with conn_sock:
            while data := conn_sock.recv(65535):
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        conn.send_headers(event.stream_id, [(":status", "302"), ("location", location),
                                                            ("content-length", "0")], end_stream=True)
                    elif isinstance(event, h2.events.ConnectionTerminated):
                        return
                conn_sock.sendall(conn.data_to_send())
        listener.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener.getsockname()[1], thread


def _http2_redirect() -> None:
    port, thread = _h2_server(f"https://download.example/dl/photo?{TEMPAUTH}=1&tempauth={TEMPAUTH}")
    with httpx.Client(http1=False, http2=True) as client:
        response = client.get(f"http://127.0.0.1:{port}/v1.0/me/drive/items/1/content",
                              headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 302 and response.http_version == "HTTP/2"
    thread.join(5)


def test_http2_bearer_token_and_redirect_location_never_reach_the_logs(every_logger_at_debug) -> None:
    log_safety.uninstall()
    unsafe = every_logger_at_debug()
    _http2_redirect()
    assert TEMPAUTH in unsafe.text, "without log_safety, httpcore/hpack do log the Location"
    assert any(line.startswith("hpack") for line in unsafe.lines)

    log_safety.install()
    safe = every_logger_at_debug()  # someone turns every logger up again, after the install
    _http2_redirect()
    assert any(line.startswith("httpcore.http2") for line in safe.lines), "the records were captured"
    assert TOKEN not in safe.text and TEMPAUTH not in safe.text
    assert "secret-bearer" not in safe.text


def test_the_graph_content_redirect_location_never_reaches_the_logs(every_logger_at_debug) -> None:
    with FakeGraph() as fake:
        file_id = fake.add_file("a.jpg", None, b"a" * 10)

        def fetch() -> None:
            with httpx.Client() as client:
                response = client.get(f"{fake.base_url}/drives/{fake.drive_id}/items/{file_id}/content",
                                      headers={"Authorization": f"Bearer {fake.token}"})
            assert response.status_code == 302

        log_safety.uninstall()
        unsafe = every_logger_at_debug()
        fetch()
        assert fake.download_secret in unsafe.text, "without log_safety, httpcore logs the Location"

        log_safety.install()
        safe = every_logger_at_debug()
        fetch()
        assert any(line.startswith("httpcore.http11") for line in safe.lines)
        assert fake.download_secret not in safe.text and fake.token not in safe.text
