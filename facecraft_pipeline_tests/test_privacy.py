"""Privacy defaults that need no server: face images stay off a tracking server unless asked for,
run links carry no credentials, the data root and the OneDrive login files are private."""

from __future__ import annotations

import stat

from facecraft_pipeline.home import Home
from facecraft_pipeline.lineage import run_url
from facecraft_pipeline.mlflow_store import is_remote_uri
from facecraft_pipeline.resources import MlflowResource


def test_a_tracking_server_is_told_from_a_local_store():
    assert is_remote_uri("http://127.0.0.1:5000") and is_remote_uri("https://mlflow.example") and is_remote_uri("databricks")
    assert not is_remote_uri("sqlite:///data/mlflow/mlflow.db") and not is_remote_uri("file:///tmp/x") and not is_remote_uri("/tmp/mlruns")
    assert not is_remote_uri(None)


def test_face_images_go_to_a_local_store_but_not_to_a_server_unless_asked(tmp_path):
    home = Home(tmp_path)
    local = MlflowResource(tracking_uri=f"sqlite:///{tmp_path / 'm.db'}", experiment="a", log_images=None).lineage(home)
    assert local.log_images is True
    # The server is never contacted here: the choice is made from the URI before any request.
    resource = MlflowResource(tracking_uri="http://127.0.0.1:9", experiment="b", log_images=None)
    from facecraft_pipeline import lineage as lineage_module

    chosen = {}

    class Recorder(lineage_module.Lineage):
        def __init__(self, uri, experiment, artifact_location=None, log_images=True):
            chosen["log_images"] = log_images

    original = lineage_module.Lineage
    lineage_module.Lineage = Recorder
    try:
        resource.lineage(home)
        assert chosen["log_images"] is False
        MlflowResource(tracking_uri="http://127.0.0.1:9", experiment="b", log_images=True).lineage(home)
        assert chosen["log_images"] is True  # the explicit setting: FACECRAFT_MLFLOW_IMAGES=on
    finally:
        lineage_module.Lineage = original


def test_run_links_never_carry_credentials():
    url = run_url("https://alice:s3cret-pw@mlflow.example:8443/base/", "3", "abc")
    assert url == "https://mlflow.example:8443/base/#/experiments/3/runs/abc"
    assert run_url("sqlite:///x.db", "1", "r") is None


def test_the_data_root_is_created_private_and_tightened_when_it_is_not(tmp_path):
    root = tmp_path / "new" / "root"
    Home(root).dir("photos")
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    existing = tmp_path / "existing"
    existing.mkdir(mode=0o755)
    existing.chmod(0o755)
    Home(existing).dir("mlflow")
    assert stat.S_IMODE(existing.stat().st_mode) == 0o700


def test_the_onedrive_login_and_token_cache_are_owner_only(tmp_path, monkeypatch):
    from azure.identity import AuthenticationRecord

    from facecraft_pipeline.sources.onedrive import OneDriveSettings
    from facecraft_pipeline.sources.onedrive_auth import save_login

    record = AuthenticationRecord("consumers", "client", "login.microsoftonline.com", "home-id", "owner@example.com")
    path = save_login(OneDriveSettings(client_id="client"), tmp_path / "auth", "facecraft-onedrive-test", record)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    # azure-identity's persistent token cache (msal-extensions), unencrypted fallback on Linux
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    from msal_extensions import FilePersistence

    cache = FilePersistence(str(tmp_path / "user" / ".IdentityService" / "facecraft-onedrive-test"))
    cache.save("{}")
    assert stat.S_IMODE((tmp_path / "user" / ".IdentityService" / "facecraft-onedrive-test").stat().st_mode) == 0o600
