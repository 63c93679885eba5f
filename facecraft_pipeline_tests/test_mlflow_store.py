"""The MLflow store: where it is, `models:/` URIs both ways, and telemetry off before mlflow loads."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from facecraft_pipeline.mlflow_store import GAN_MODELS, MODEL_OF_ASSET, ModelUri, configured_uri, local_store, store_uri


def test_the_store_is_the_configured_uri_else_sqlite_in_the_data_root(tmp_path, monkeypatch):
    assert store_uri(tmp_path) == f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}" == f"sqlite:///{local_store(tmp_path)}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert store_uri(tmp_path, configured_uri()) == "http://127.0.0.1:5000"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "")
    assert store_uri(tmp_path, configured_uri()) == f"sqlite:///{local_store(tmp_path)}"


@pytest.mark.parametrize("text, uri", [
    ("models:/facecraft-lora@champion", ModelUri("facecraft-lora", alias="champion")),
    ("models:/facecraft-gan-checkpoint/3", ModelUri("facecraft-gan-checkpoint", version="3")),
    ("models:/facecraft-gan-checkpoint/latest", ModelUri("facecraft-gan-checkpoint", version="latest")),
])
def test_model_uris_parse_and_print_back(text, uri):
    assert ModelUri.parse(text) == uri and str(uri) == text


def test_a_bare_name_is_its_newest_version_and_malformed_uris_are_refused():
    assert ModelUri.parse("models:/facecraft-lora") == ModelUri("facecraft-lora")
    assert str(ModelUri("facecraft-lora")) == "models:/facecraft-lora/latest"
    for bad in ("models:/bad uri/with/parts", "models:/a@b/c", "models:/", "runs:/abc/model", "facecraft-lora"):
        with pytest.raises(ValueError, match="not a model URI"):
            ModelUri.parse(bad)


def test_every_trained_asset_has_one_registered_model_and_the_explorer_draws_the_gans():
    assert set(MODEL_OF_ASSET) == {"gan_checkpoint", "wgan_gp_checkpoint", "lora_weights"}
    assert len(set(MODEL_OF_ASSET.values())) == 3
    assert set(GAN_MODELS) == {MODEL_OF_ASSET["gan_checkpoint"], MODEL_OF_ASSET["wgan_gp_checkpoint"]}


def test_mlflow_telemetry_is_off_once_lineage_is_imported():
    """MLflow starts its telemetry client when it is imported, unless MLFLOW_DISABLE_TELEMETRY is set by then."""
    code = "import facecraft_pipeline.lineage, mlflow.telemetry.client as t; print(t.get_telemetry_client())"
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK", "CI")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "None"
