"""`make dev`: the Dagster UI serves the asset graph, checks and automation of these definitions."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUERY = """{
  assetNodes { assetKey { path } }
  repositoriesOrError { ... on RepositoryConnection { nodes { sensors { name } } } }
}"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_dagster_dev_serves_the_asset_graph_and_sensors(tmp_path):
    port = free_port()
    (tmp_path / "dagster").mkdir()
    shutil.copyfile(ROOT / "dagster.yaml", tmp_path / "dagster" / "dagster.yaml")  # as `make dev` does
    env = os.environ | {"DAGSTER_HOME": str(tmp_path / "dagster"), "FACECRAFT_HOME": str(tmp_path)}
    dagster = Path(sys.executable).with_name("dagster")
    server = subprocess.Popen(
        [str(dagster), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        # Dagster maps SIGTERM onto SIGINT; under a background job SIGINT arrives ignored (STACK.md)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        answer = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and answer is None:
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/graphql", json.dumps({"query": QUERY}).encode(), {"Content-Type": "application/json"}
                )
                answer = json.load(urllib.request.urlopen(request, timeout=5))["data"]
                if not answer["assetNodes"]:
                    answer = None  # the code location is still loading
                    time.sleep(1)
            except OSError:
                time.sleep(1)
        assert answer is not None, "dagster dev did not answer within 120 s"
        assets = {"/".join(node["assetKey"]["path"]) for node in answer["assetNodes"]}
        assert {"photos", "face_crops", "identity_clusters", "curated_dataset", "gan_checkpoint", "wgan_gp_checkpoint",
                "lora_weights", "sample_galleries"} <= assets
        sensors = {s["name"] for repo in answer["repositoriesOrError"]["nodes"] for s in repo["sensors"]}
        assert {"new_photos_sensor", "retrain_when_dataset_changes"} <= sensors
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=180)  # dagster dev stops its webserver, daemon and code server in turn
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
            raise
    assert (tmp_path / "dagster" / "history" / "runs.db").exists(), "the UI uses the instance in the data root"
    assert not list(ROOT.glob(".tmp_dagster_home_*")) and not (ROOT / ".logs_queue").exists(), "nothing lands in the checkout"
