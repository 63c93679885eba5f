"""Session-wide PostgreSQL and MLflow tracking servers (real processes on 127.0.0.1), and the demo
graph materialized on them twice, from a (fake) OneDrive, with a secret planted in every setting
that can hold one.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from facecraft_pipeline.home import Home
from facecraft_pipeline.resources import OneDriveResource
from facecraft_pipeline.sources.onedrive import OneDriveSource
from facecraft_pipeline_tests.infra.servers import PG_PASSWORD, Webhook, mlflow_server, pg_missing_reason, postgres_server
from facecraft_pipeline_tests.test_pipeline_e2e import SHORT_TRAINING as E2E_SHORT_TRAINING

PROJECT = Path(__file__).resolve().parents[2]

# Planted secrets: none of them may appear in any log line, event, metadata or MLflow record.
SECRETS = {
    "postgres password": PG_PASSWORD,
    "MLflow password": "mlflow-pass-3b9e61c0aa77",
    "webhook token": "whtoken-8c1d7e55f0a2c4",
    "Graph bearer token": "graph-bearer-0d4f9a7c21e3b6",
}


@pytest.fixture(scope="session")
def postgres():
    reason = pg_missing_reason()
    if reason:
        pytest.skip(reason)
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="session")
def mlflow_tracking(postgres, tmp_path_factory):
    """(tracking URL, artifact root, server log) of an `mlflow server` whose backend store is the PostgreSQL above."""
    postgres.create_database("mlflow")
    folder = tmp_path_factory.mktemp("mlflow-server")
    artifacts = folder / "artifacts"
    artifacts.mkdir()
    with mlflow_server(postgres.url("mlflow"), artifacts, folder / "server.log") as url:
        yield url, artifacts, folder / "server.log"


def postgres_instance(postgres, db: str, dagster_home: Path, monkeypatch) -> dg.DagsterInstance:
    """A DagsterInstance from deploy/dagster-postgres.yaml, its settings from the environment."""
    postgres.create_database(db)
    dagster_home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PROJECT / "deploy" / "dagster-postgres.yaml", dagster_home / "dagster.yaml")
    for name, value in {
        "DAGSTER_HOME": str(dagster_home), "DAGSTER_PG_HOST": postgres.host, "DAGSTER_PG_PORT": str(postgres.port),
        "DAGSTER_PG_DB": db, "DAGSTER_PG_USER": postgres.user, "DAGSTER_PG_PASSWORD": postgres.password,
    }.items():
        monkeypatch.setenv(name, value)
    return dg.DagsterInstance.from_config(str(dagster_home))


class SignedInOneDrive(OneDriveResource):
    """The OneDrive source on the fake Graph, signed in with a fixed bearer token; the demo's owner references."""

    token: str = ""

    def build(self, home: Home) -> OneDriveSource:
        from facecraft_pipeline_tests.onedrive.conftest import StaticToken

        return OneDriveSource(self.onedrive_settings(), home.dir("photos", "onedrive"), self.state_dir(home), StaticToken(self.token))

    def reference_photos(self, home: Home) -> list[Path]:
        from facecraft_pipeline.sources.demo_album import demo_reference_photos

        return demo_reference_photos(home.dir("photos", "demo-reference"))


class _Tee(io.TextIOBase):
    def __init__(self, *streams):
        self.streams = streams

    def write(self, text):
        for s in self.streams:
            s.write(text)
        return len(text)

    def flush(self):
        for s in self.streams:
            s.flush()


@contextlib.contextmanager
def everything_logged_at_debug():
    """Every Python log record at DEBUG and everything written to stdout/stderr, as one text."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    names = ["", "dagster", "mlflow", "urllib3", "requests", "httpx", "httpcore", "azure", "msal", "kiota_http", "msgraph", "facecraft"]
    before = {n: logging.getLogger(n).level for n in names}
    root.addHandler(handler)
    for n in names:
        logging.getLogger(n).setLevel(logging.DEBUG)
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Tee(out, buffer), _Tee(err, buffer)
    try:
        yield buffer
    finally:
        sys.stdout, sys.stderr = out, err
        root.removeHandler(handler)
        for n, level in before.items():
            logging.getLogger(n).setLevel(level)


# The e2e test's short training lengths (one definition), with every Dagster log line at DEBUG.
SHORT_TRAINING = {**E2E_SHORT_TRAINING, "loggers": {"console": {"config": {"log_level": "DEBUG"}}}}


@dataclass
class Deployed:
    instance: dg.DagsterInstance
    tracking_uri: str
    artifacts: Path
    server_log: Path
    postgres: Any
    home: Path
    experiment: str
    graph: Any
    first: Any = None
    second: Any = None
    failed: Any = None
    seconds: dict[str, float] = field(default_factory=dict)
    versions_after_first: dict[str, list[str]] = field(default_factory=dict)
    webhook: list = field(default_factory=list)
    webhook_path: str = ""
    logs: str = ""


def model_versions(client) -> dict[str, list[str]]:
    return {m.name: sorted(v.version for v in client.search_model_versions(f"name = '{m.name}'")) for m in client.search_registered_models()}


@pytest.fixture(scope="session")
def deployed(postgres, mlflow_tracking, tmp_path_factory):
    """The demo graph on Dagster-on-PostgreSQL and an MLflow server, twice, then one failing run reported."""
    from mlflow import MlflowClient

    from facecraft_pipeline.assets.checks import CHECKS
    from facecraft_pipeline.definitions import WHOLE_GRAPH, build_assets, build_resources
    from facecraft_pipeline.failure_report import failed_run_report
    from facecraft_pipeline.resources import HomeResource, MlflowResource
    from facecraft_pipeline.sources.demo_album import build_demo_album
    from facecraft_pipeline_tests.onedrive.fake_graph import FakeGraph

    url, artifacts, server_log = mlflow_tracking
    root = tmp_path_factory.mktemp("deployed")
    home = root / "home"
    album = root / "album"
    build_demo_album(album)
    with pytest.MonkeyPatch.context() as mp, FakeGraph(page_size=20, token=SECRETS["Graph bearer token"]) as graph, Webhook() as hook:
        mp.setenv("MLFLOW_TRACKING_URI", url)
        mp.setenv("MLFLOW_TRACKING_USERNAME", "facecraft")
        mp.setenv("MLFLOW_TRACKING_PASSWORD", SECRETS["MLflow password"])
        webhook_path = f"/hooks/{SECRETS['webhook token']}"
        mp.setenv("FACECRAFT_FAILURE_WEBHOOK_URL", hook.url(webhook_path))
        mp.setenv("HOME", str(root / "user-home"))
        instance = postgres_instance(postgres, "dagster", root / "dagster-home", mp)
        pictures = graph.add_folder("Pictures", special="photos")
        for path in sorted(album.iterdir()):
            if path.is_file() and not path.name.startswith("."):
                graph.add_file(path.name, pictures, path.read_bytes())
        result = Deployed(instance, url, artifacts, server_log, postgres, home, "pg-e2e", graph, webhook_path=webhook_path)

        def run(token: str, selection=None, config=SHORT_TRAINING):
            res = build_resources(dict(os.environ), HomeResource(root=str(home)))
            res["mlflow"] = MlflowResource(tracking_uri=url, experiment=result.experiment)
            res["photo_source"] = SignedInOneDrive(
                settings={"folder": "/Pictures", "client_id": "test-client", "graph_base_url": graph.base_url}, token=token
            )
            return dg.materialize([*build_assets(), *CHECKS], resources=res, instance=instance, run_config=config, selection=selection or WHOLE_GRAPH,
                                  raise_on_error=False)

        client = MlflowClient(url)
        with everything_logged_at_debug() as logs:
            start = time.perf_counter()
            result.first = run(graph.token)
            result.seconds["first"] = time.perf_counter() - start
            result.versions_after_first = model_versions(client)
            start = time.perf_counter()
            result.second = run(graph.token)
            result.seconds["second"] = time.perf_counter() - start
            # A run that fails deterministically (the Graph refuses a stale token), then the failure sensor.
            result.failed = run("stale-token", selection=["photos"], config={"loggers": SHORT_TRAINING["loggers"]})
            (failure,) = instance.get_records_for_run(result.failed.run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
            context = dg.build_run_status_sensor_context(
                sensor_name="failed_run_report",
                dagster_event=failure.event_log_entry.dagster_event,
                dagster_instance=instance,
                dagster_run=instance.get_run_by_id(result.failed.run_id),
            ).for_run_failure()
            failed_run_report(context)
        result.logs = logs.getvalue()
        result.webhook = list(hook.received)
        print(f"\npostgres-backed demo materialization: first {result.seconds['first']:.1f} s, second {result.seconds['second']:.1f} s")
        yield result
        instance.dispose()
