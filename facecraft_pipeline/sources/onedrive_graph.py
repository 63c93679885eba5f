"""Talking to Microsoft Graph: the SDK client, plain-JSON GETs, and the errors a sync can meet.

Kept apart from the source so that listing (onedrive_delta) and downloading (onedrive_download)
share one way to call Graph and one set of errors, without importing the source itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import ssl
from collections.abc import AsyncIterator, Awaitable
from typing import Any, Protocol

import httpx
from azure.core.exceptions import ClientAuthenticationError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.native_response_handler import NativeResponseHandler
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from kiota_http.middleware.options import ResponseHandlerOption
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_request_adapter import options as graph_adapter_options
from msgraph.graph_service_client import GraphServiceClient
from msgraph_core import GraphClientFactory

from facecraft_pipeline.log_safety import install as install_log_safety
from facecraft_pipeline.sources.onedrive_auth import LOGIN_HINT, SCOPES, LoginRequiredError


class OneDriveError(RuntimeError):
    """Graph refused something the whole sync depends on (not one photo: those become "failed")."""


class GraphStatusError(OneDriveError):
    """Graph answered an error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class DeltaExpiredError(Exception):
    """The delta link is too old (HTTP 410): only a full listing helps."""


class _ThreadedCredential:
    """Runs a blocking azure-identity credential off the event loop the SDK calls it from."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    async def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        if inspect.iscoroutinefunction(self._inner.get_token):  # an azure.identity.aio credential
            return await self._inner.get_token(*scopes, **kwargs)
        return await asyncio.to_thread(self._inner.get_token, *scopes, **kwargs)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """Loading the CA bundle costs ~0.1 s; a sensor polling every minute should pay it once."""
    return httpx.create_ssl_context()


@contextlib.asynccontextmanager
async def _graph_client(credential: Any, base_url: str) -> AsyncIterator[GraphServiceClient]:
    client = httpx.AsyncClient(timeout=httpx.Timeout(100.0, connect=30.0), http2=True, verify=_tls_context())
    http = GraphClientFactory.create_with_default_middleware(client=client, options=dict(graph_adapter_options))
    adapter = GraphRequestAdapter(AzureIdentityAuthenticationProvider(credential, scopes=list(SCOPES)), client=http)
    adapter.base_url = base_url.rstrip("/")
    try:
        yield GraphServiceClient(request_adapter=adapter)
    finally:
        await http.aclose()


@contextlib.asynccontextmanager
async def open_graph(credential: Any, base_url: str) -> AsyncIterator[GraphServiceClient]:
    """A Graph client for one sync or poll; a refused login anywhere inside says how to log in again."""
    install_log_safety()  # also when the source is used from a notebook, without the Definitions
    try:
        async with _graph_client(_ThreadedCredential(credential), base_url) as graph:
            yield graph
    except ClientAuthenticationError as error:
        raise LoginRequiredError(
            f"OneDrive needs a fresh login ({type(error).__name__}): {LOGIN_HINT}."
        ) from error


class RequestBuilder(Protocol):
    def get(self, request_configuration: Any = None) -> Awaitable[Any]: ...


async def get_json(builder: RequestBuilder, what: str) -> dict[str, Any]:
    """GET through an SDK request builder and return the JSON body as plain dicts.

    The SDK still builds the URL, authenticates, retries 429/503/504 after Retry-After and follows
    redirects; only its model parsing is skipped: msgraph-sdk 1.65 spends ~15-20 ms per DriveItem
    (Entity.get_field_deserializers re-imports thousands of names each call), 20 s per 1,000 items.
    """
    native: RequestConfiguration[Any] = RequestConfiguration(options=[ResponseHandlerOption(NativeResponseHandler())])
    response: httpx.Response = await builder.get(request_configuration=native)
    status = response.status_code
    if status == 200:
        body = response.json()
        return body if isinstance(body, dict) else {}
    if status == 401:
        raise LoginRequiredError(f"Microsoft Graph rejected the OneDrive login: {LOGIN_HINT}.")
    if status == 410:
        raise DeltaExpiredError()
    try:
        code = str(response.json().get("error", {}).get("code", ""))
    except ValueError:
        code = ""
    raise GraphStatusError(status, f"Microsoft Graph answered HTTP {status} {code} while {what}".replace("  ", " "))
