"""After the full deployed run (Dagster on PostgreSQL, MLflow server, OneDrive via the fake Graph, a
failing run reported to a webhook), no planted secret appears anywhere a person or a server keeps:
Dagster's event log and run records (metadata included), MLflow params, tags, metrics, artifacts and
registry, every log line at DEBUG and stdout/stderr, the servers' logs, the data root's files, the
failure report. The data root and the login files are private.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from dagster import serialize_value
from mlflow import MlflowClient

from facecraft_pipeline_tests.infra.conftest import SECRETS

pytestmark = pytest.mark.slow


def _files_text(root: Path) -> str:
    return "\n".join(p.read_bytes().decode("latin-1") for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink())


def everything_kept(deployed, tmp_path) -> dict[str, str]:
    instance = deployed.instance
    kept: dict[str, list[str]] = {"dagster event log": [], "dagster runs": [], "mlflow runs": [], "mlflow registry": []}
    for run in instance.get_runs():
        kept["dagster runs"].append(serialize_value(run))
        kept["dagster event log"].extend(serialize_value(entry) for entry in instance.all_logs(run.run_id))
    client = MlflowClient(deployed.tracking_uri)
    for experiment in client.search_experiments():
        for run in client.search_runs([experiment.experiment_id], max_results=5000):
            kept["mlflow runs"].append(json.dumps([run.data.params, run.data.tags, sorted(run.data.metrics), run.info.run_name]))
            client.download_artifacts(run.info.run_id, "", str(tmp_path / run.info.run_id))
    for model in client.search_registered_models():
        kept["mlflow registry"].append(repr(model))
        kept["mlflow registry"].extend(repr(v) for v in client.search_model_versions(f"name = '{model.name}'"))
    texts = {k: "\n".join(v) for k, v in kept.items()}
    texts["mlflow artifacts (downloaded)"] = _files_text(tmp_path)
    texts["mlflow server's artifact root"] = _files_text(deployed.artifacts)
    texts["log lines at DEBUG, stdout and stderr"] = deployed.logs
    texts["mlflow server log"] = deployed.server_log.read_text(errors="replace")
    texts["postgres server log"] = (deployed.postgres.root / "log").read_text(errors="replace")
    texts["data root files"] = _files_text(deployed.home)
    texts["failure report sent"] = json.dumps([body for _, body in deployed.webhook])
    return texts


def test_no_planted_secret_is_kept_anywhere(deployed, tmp_path):
    texts = everything_kept(deployed, tmp_path)
    assert len(texts["dagster event log"]) > 100_000 and "STEP_SUCCESS" in texts["dagster event log"]
    assert " DEBUG " in texts["log lines at DEBUG, stdout and stderr"]
    assert "facecraft.asset" in texts["mlflow runs"] and "pytorch_lora_weights" in texts["mlflow server's artifact root"] + texts["mlflow registry"]
    secrets = {**SECRETS, "Graph pre-authenticated download URL": deployed.graph.download_secret}
    found = [(name, where) for name, secret in secrets.items() for where, text in texts.items() if secret in text]
    assert found == []


def test_the_planted_secrets_were_really_in_use(deployed):
    """The scan above means something only if each secret was live during the run."""
    assert deployed.first.success  # the Graph accepted its bearer token, Dagster its PostgreSQL password
    assert deployed.webhook and deployed.webhook[0][0] == deployed.webhook_path  # the webhook URL (its token) was used
    assert SECRETS["webhook token"] in deployed.webhook_path


def test_the_failure_was_reported_with_the_asset_and_the_reason(deployed):
    (path, body), = deployed.webhook
    assert body["run_id"] == deployed.failed.run_id
    assert body["failed"][0]["asset"] == "photos"
    assert "rejected the OneDrive login" in body["failed"][0]["reason"]
    assert "failed: asset photos: LoginRequiredError" in deployed.logs


def test_the_data_root_is_private(deployed):
    assert stat.S_IMODE(deployed.home.stat().st_mode) == 0o700
