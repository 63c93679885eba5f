"""Session-wide PostgreSQL and MLflow tracking servers (real processes on 127.0.0.1)."""

from __future__ import annotations

import pytest

from facecraft_pipeline_tests.infra.servers import mlflow_server, pg_missing_reason, postgres_server


@pytest.fixture(scope="session")
def postgres():
    reason = pg_missing_reason()
    if reason:
        pytest.skip(reason)
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="session")
def mlflow_tracking(postgres, tmp_path_factory):
    """(tracking URL, artifact root) of an `mlflow server` whose backend store is the PostgreSQL above."""
    postgres.create_database("mlflow")
    folder = tmp_path_factory.mktemp("mlflow-server")
    artifacts = folder / "artifacts"
    artifacts.mkdir()
    with mlflow_server(postgres.url("mlflow"), artifacts, folder / "server.log") as url:
        yield url, artifacts
