"""Signing in to OneDrive once, interactively, so that scheduled syncs run silently afterwards.

A personal OneDrive needs delegated (user) auth. `login` runs the device-code or browser flow
and saves the account's AuthenticationRecord beside the name of its persistent MSAL token cache;
`load_credential` rebuilds a credential from them that never prompts: when the refresh token is
gone, it raises `LoginRequiredError` telling the user to run `facecraft login` again.
The token cache itself is kept by msal-extensions (OS keyring, or a 0600 file when none exists).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from azure.identity import (
    AuthenticationRecord,
    DeviceCodeCredential,
    InteractiveBrowserCredential,
    TokenCachePersistenceOptions,
)

from facecraft_pipeline.sources.onedrive_settings import OneDriveSettings
from facecraft_pipeline.sources.sync_state import write_private_json

# Reading one's own drive needs no more; MSAL adds offline_access (the refresh token) itself.
SCOPES: tuple[str, ...] = ("Files.Read",)
LOGIN_FILE = "onedrive_login.json"
LOGIN_HINT = "run `facecraft login` to sign in to OneDrive"


class LoginRequiredError(RuntimeError):
    """OneDrive cannot be read without a (fresh) interactive login."""


def resolve_auth_dir(settings: OneDriveSettings, state_dir: Path) -> Path:
    """Where the login lives: `settings.auth_dir`, else `<state_dir>/onedrive_auth`."""
    return Path(settings.auth_dir).expanduser() if settings.auth_dir else state_dir / "onedrive_auth"


def login(
    settings: OneDriveSettings,
    auth_dir: Path,
    use_device_code: bool = True,
    prompt_callback: Callable[[str], Any] = print,
) -> str:
    """Sign in interactively, save the login (0600 file in a 0700 folder); returns the account name."""
    _require_client_id(settings)
    cache_name = f"facecraft-onedrive-{secrets.token_hex(8)}"
    credential = _credential(settings, cache_name, None, interactive=True, use_device_code=use_device_code,
                             prompt_callback=prompt_callback)
    if not use_device_code:
        prompt_callback("Opening a browser window to sign in to OneDrive ...")
    record = credential.authenticate(scopes=list(SCOPES))
    save_login(settings, auth_dir, cache_name, record)
    return record.username


def save_login(settings: OneDriveSettings, auth_dir: Path, cache_name: str, record: AuthenticationRecord) -> Path:
    """Keep what a silent credential needs: the account record and the token cache's name (no tokens)."""
    auth_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(auth_dir, 0o700)
    path = auth_dir / LOGIN_FILE
    write_private_json(
        path,
        {
            "client_id": settings.client_id,
            "tenant": settings.tenant,
            "cache_name": cache_name,
            "authentication_record": record.serialize(),
        },
    )
    return path


def load_credential(settings: OneDriveSettings, auth_dir: Path) -> DeviceCodeCredential | InteractiveBrowserCredential:
    """A credential that only uses the saved login and never prompts (for scheduled runs)."""
    _require_client_id(settings)
    path = auth_dir / LOGIN_FILE
    if not path.exists():
        raise LoginRequiredError(f"No OneDrive login saved in {auth_dir}: {LOGIN_HINT}.")
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        record = AuthenticationRecord.deserialize(saved["authentication_record"])
        cache_name = str(saved["cache_name"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise LoginRequiredError(f"The saved OneDrive login in {path} is unreadable: {LOGIN_HINT}.") from error
    if saved.get("client_id") != settings.client_id or saved.get("tenant") != settings.tenant:
        raise LoginRequiredError(
            f"The saved OneDrive login was made for another client_id or tenant: {LOGIN_HINT}."
        )
    return _credential(settings, cache_name, record, interactive=False, use_device_code=True,
                       prompt_callback=None)


def _credential(
    settings: OneDriveSettings,
    cache_name: str,
    record: AuthenticationRecord | None,
    *,
    interactive: bool,
    use_device_code: bool,
    prompt_callback: Callable[[str], Any] | None,
) -> DeviceCodeCredential | InteractiveBrowserCredential:
    cache = TokenCachePersistenceOptions(name=cache_name, allow_unencrypted_storage=True)
    common: dict[str, Any] = {
        "client_id": settings.client_id,
        "tenant_id": settings.tenant,
        "cache_persistence_options": cache,
        "disable_automatic_authentication": not interactive,
    }
    if record is not None:
        common["authentication_record"] = record
    if use_device_code:
        def show_code(verification_uri: str, user_code: str, expires_on: datetime) -> None:
            if prompt_callback is not None:
                prompt_callback(f"To sign in to OneDrive, open {verification_uri} and enter the code {user_code}")

        return DeviceCodeCredential(prompt_callback=show_code, **common)
    return InteractiveBrowserCredential(**common)


def _require_client_id(settings: OneDriveSettings) -> None:
    if not settings.client_id:
        raise LoginRequiredError(
            "OneDrive needs an app registration: set OneDriveSettings.client_id to the application (client) id "
            "of an Entra app that allows personal accounts and public-client flows, then run `facecraft login`."
        )
