"""A real PostgreSQL server and a real `mlflow server` on loopback ports, for the platform tests.

The PostgreSQL binaries come from Debian's `postgresql` package (CI's `.ci/run` installs it);
this module installs nothing. Where the binaries are missing the fixtures skip with that reason.
PostgreSQL refuses to run as root, so as root the data folder belongs to `postgres` and every
server command runs through `runuser -u postgres`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path


def _pg_bin() -> Path:
    """$FACECRAFT_PG_BIN, else Debian's newest /usr/lib/postgresql/<major>/bin (15 on this project's machines)."""
    if os.environ.get("FACECRAFT_PG_BIN"):
        return Path(os.environ["FACECRAFT_PG_BIN"])
    major = lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0  # noqa: E731
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=major)
    return found[-1].parent if found else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _pg_bin()
PG_USER = "facecraft"
PG_PASSWORD = "pg-secret-7f3c91d2e8"  # planted: the secret scan looks for it everywhere


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_missing_reason() -> str | None:
    for tool in ("initdb", "pg_ctl", "postgres"):
        if not (PG_BIN / tool).is_file():
            return f"PostgreSQL server binaries not found in {PG_BIN} (apt-get install -y postgresql; .ci/run does)"
    if os.geteuid() == 0 and not shutil.which("runuser"):
        return "running as root and runuser is missing: PostgreSQL refuses to run as root"
    return None


@dataclass
class Postgres:
    host: str
    port: int
    user: str
    password: str
    root: Path

    def url(self, db: str) -> str:
        # SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3; the project ships psycopg2.
        return f"postgresql+psycopg2://{self.user}:{self.password}@{self.host}:{self.port}/{db}"

    def create_database(self, name: str) -> None:
        import psycopg2

        conn = psycopg2.connect(host=self.host, port=self.port, user=self.user, password=self.password, dbname="postgres")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        conn.close()


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@contextlib.contextmanager
def postgres_server():
    """initdb in a temp folder, start on a free loopback port with password auth, stop and delete after."""
    root = Path(tempfile.mkdtemp(prefix="facecraft-pg-"))
    os.chmod(root, 0o700)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    pwfile = root / "pw"
    pwfile.write_text(PG_PASSWORD + "\n")
    if os.geteuid() == 0:
        shutil.chown(pwfile, "postgres", "postgres")
    data, log, port = root / "data", root / "log", free_port()
    subprocess.run(
        _as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-U", PG_USER, "-A", "scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8"]),
        check=True, capture_output=True,
    )
    pwfile.unlink()
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    start = [str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(log), "-w", "start"]
    subprocess.run(_as_postgres(start), check=True, capture_output=True)
    try:
        yield Postgres("127.0.0.1", port, PG_USER, PG_PASSWORD, root)
    finally:
        subprocess.run(_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]), capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def mlflow_server(backend_uri: str, artifacts: Path, log_path: Path):
    """`mlflow server` with a PostgreSQL backend store and a separate (proxied) artifact root."""
    port = free_port()
    env = dict(os.environ, MLFLOW_DISABLE_TELEMETRY="true")
    env.pop("MLFLOW_TRACKING_URI", None)
    mlflow = Path(sys.executable).with_name("mlflow")
    cmd = [
        str(mlflow), "server", "--backend-store-uri", backend_uri, "--artifacts-destination", artifacts.as_uri(),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(url + "/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            if time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not answer in 120 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Webhook:
    """A loopback HTTP server that records every POST (path and JSON body)."""

    def __init__(self) -> None:
        import http.server
        import json
        import threading

        received: list[tuple[str, object]] = []
        self.received = received

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append((self.path, json.loads(body or b"null")))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> Webhook:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
