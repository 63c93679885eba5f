"""OneDrive login: private files, silent credentials for scheduled runs, actionable errors, no leaks."""

from __future__ import annotations

import logging
import stat
from pathlib import Path
from typing import Any

import pytest
from azure.identity import AuthenticationRecord, AuthenticationRequiredError, DeviceCodeCredential

from facecraft_pipeline.sources.onedrive import OneDriveSource
from facecraft_pipeline.sources.onedrive_settings import OneDriveSettings
from facecraft_pipeline.sources.onedrive_auth import (
    LoginRequiredError,
    load_credential,
    resolve_auth_dir,
    save_login,
)
from facecraft_pipeline_tests.onedrive.conftest import SourceFactory
from facecraft_pipeline_tests.onedrive.fake_graph import FakeGraph

SETTINGS = OneDriveSettings(client_id="00000000-0000-0000-0000-00000000abcd")


def a_record() -> AuthenticationRecord:
    return AuthenticationRecord("consumers", SETTINGS.client_id, "login.microsoftonline.com",
                                "uid.utid", "someone@example.com")


def test_saved_login_is_private_and_gives_a_silent_credential(tmp_path: Path) -> None:
    auth_dir = tmp_path / "auth"
    path = save_login(SETTINGS, auth_dir, "facecraft-onedrive-test", a_record())

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(auth_dir.stat().st_mode) == 0o700
    credential = load_credential(SETTINGS, auth_dir)
    assert isinstance(credential, DeviceCodeCredential)
    assert credential._disable_automatic_authentication is True  # never prompts in a scheduled run


def test_missing_login_tells_the_user_to_run_facecraft_login(tmp_path: Path) -> None:
    with pytest.raises(LoginRequiredError, match="facecraft login"):
        load_credential(SETTINGS, tmp_path / "nowhere")


def test_login_for_another_app_registration_is_not_used(tmp_path: Path) -> None:
    save_login(SETTINGS, tmp_path, "cache", a_record())
    with pytest.raises(LoginRequiredError, match="another client_id"):
        load_credential(OneDriveSettings(client_id="someone-else"), tmp_path)


def test_missing_client_id_says_what_to_configure(tmp_path: Path) -> None:
    with pytest.raises(LoginRequiredError, match="client_id"):
        load_credential(OneDriveSettings(), tmp_path)


def test_auth_dir_defaults_under_the_state_folder(tmp_path: Path) -> None:
    assert resolve_auth_dir(SETTINGS, tmp_path) == tmp_path / "onedrive_auth"
    assert resolve_auth_dir(OneDriveSettings(auth_dir=str(tmp_path / "x")), tmp_path) == tmp_path / "x"


def test_sync_without_a_saved_login_fails_with_the_login_hint(fake: FakeGraph, tmp_path: Path) -> None:
    settings = OneDriveSettings(client_id="app", graph_base_url=fake.base_url)
    source = OneDriveSource(settings, tmp_path / "mirror", tmp_path / "state")  # no credential: saved login
    with pytest.raises(LoginRequiredError, match="facecraft login"):
        source.sync()


class ExpiredLogin:
    """What azure-identity does when the refresh token is gone and prompting is disabled."""

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        raise AuthenticationRequiredError(scopes=scopes, message="Interactive authentication is required")


def test_expired_login_during_a_scheduled_sync_asks_for_a_new_login(fake: FakeGraph, tmp_path: Path) -> None:
    source = OneDriveSource(OneDriveSettings(graph_base_url=fake.base_url), tmp_path / "m", tmp_path / "s",
                            credential=ExpiredLogin())
    with pytest.raises(LoginRequiredError, match="facecraft login"):
        source.sync()


def test_no_token_or_download_url_secret_reaches_the_logs(
        fake: FakeGraph, pictures: str, make_source: SourceFactory, caplog: pytest.LogCaptureFixture) -> None:
    flaky = fake.add_file("flaky.jpg", pictures, b"f" * 3000)
    fake.add_file("fine.jpg", pictures, b"o" * 3000)
    fake.fail_download(flaky, ("truncate",))
    caplog.set_level(logging.DEBUG)  # every logger, httpx/httpcore/kiota/azure included

    source = make_source()
    report = source.sync()
    source.check_for_changes(source.check_for_changes(None).cursor)

    assert len(report.ok) == 2
    assert "attempt 1/3" in caplog.text, "the retries were logged, so the logs were captured"
    assert fake.token not in caplog.text
    assert fake.download_secret not in caplog.text
    assert "/dl/" not in caplog.text
