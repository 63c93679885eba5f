"""Retries for transient faults only: a later try may pass, so retry; otherwise fail at once.

- `is_transient(error)`: network faults, timeouts, throttling (HTTP 429/5xx, Graph past its own
  retries), a database connection dropped. Everything else (bad settings, no owner cluster, a
  corrupt file) is deterministic: retrying it would fail the same way.
- `RETRY_POLICY`: exponential backoff with jitter; `retry_policy_from_env(env)` reads its size from the environment the Definitions are built with.
- `@final_unless_transient` (under `@dg.asset`): a deterministic error becomes
  `dg.Failure(allow_retries=False)`, which the retry policy does not retry.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping

import dagster as dg

from facecraft_pipeline.env import env_int, env_str

TRANSIENT_HTTP = {408, 425, 429, 500, 502, 503, 504}
TRANSIENT_TYPES = {
    "httpx.TransportError",
    "httpcore.NetworkError",
    "httpcore.TimeoutException",
    "requests.exceptions.ConnectionError",
    "requests.exceptions.Timeout",
    "urllib3.exceptions.HTTPError",
    "urllib.error.URLError",
    "psycopg2.OperationalError",
    "sqlalchemy.exc.OperationalError",
    "azure.core.exceptions.ServiceRequestError",
    "azure.core.exceptions.ServiceResponseError",
}

RETRY_POLICY = dg.RetryPolicy(max_retries=3, delay=10.0, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


def retry_policy_from_env(env: Mapping[str, str]) -> dg.RetryPolicy:
    """RETRY_POLICY with FACECRAFT_RETRIES and FACECRAFT_RETRY_DELAY_S (seconds before the first retry; doubles)."""
    retries = env_int("FACECRAFT_RETRIES", RETRY_POLICY.max_retries, env)
    try:
        delay = float(env_str("FACECRAFT_RETRY_DELAY_S", str(RETRY_POLICY.delay), env))
    except ValueError:
        raise ValueError("FACECRAFT_RETRY_DELAY_S is not a number of seconds") from None
    if retries < 0 or delay < 0:
        raise ValueError("FACECRAFT_RETRIES and FACECRAFT_RETRY_DELAY_S must not be negative")
    return dg.RetryPolicy(max_retries=retries, delay=delay, backoff=RETRY_POLICY.backoff, jitter=RETRY_POLICY.jitter)


def _status_code(error: BaseException) -> int | None:
    for name in ("response_status_code", "status_code", "code", "status"):
        value = getattr(error, name, None)
        if isinstance(value, int) and 100 <= value < 600:
            return value
    response = getattr(error, "response", None)
    value = getattr(response, "status_code", None)
    return value if isinstance(value, int) else None


def _transient_one(error: BaseException) -> bool:
    if isinstance(error, dg.Failure):
        return False  # our own code's verdict: bad settings, no owner, nothing to train on
    if isinstance(error, (ConnectionError, TimeoutError)):  # incl. refused/reset, socket timeouts
        return True
    names = {f"{c.__module__}.{c.__name__}" for c in type(error).__mro__}
    if names & TRANSIENT_TYPES:
        return True
    if "mlflow.exceptions.MlflowException" in names:  # the tracking server's verdict, by error code
        return getattr(error, "error_code", "") in {"TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED"}
    code = _status_code(error)
    if code is not None and type(error).__name__ in {"ODataError", "APIError", "HTTPError", "HTTPStatusError"}:
        return code in TRANSIENT_HTTP  # Graph throttling/outage that outlasted msgraph's own retries
    return False


def is_transient(error: BaseException) -> bool:
    """True when retrying later could succeed: checks the error and its causes."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _transient_one(current):
            return True
        if isinstance(current, dg.Failure):
            return False
        current = current.__cause__ or current.__context__
    return False


def final_unless_transient(fn):
    """Decorate an asset function (under `@dg.asset`): transient errors reach the retry policy, every
    other error becomes a final `dg.Failure` (the policy leaves it alone, the run fails at once)."""
    if inspect.isgeneratorfunction(fn) or inspect.iscoroutinefunction(fn):
        raise TypeError(f"final_unless_transient wraps plain functions; {fn.__name__} is a generator or coroutine")

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as error:
            if is_transient(error) or isinstance(error, dg.RetryRequested):
                raise
            if isinstance(error, dg.Failure):
                if not error.allow_retries:
                    raise
                raise dg.Failure(description=error.description, metadata=error.metadata, allow_retries=False) from error
            raise dg.Failure(description=f"{type(error).__name__}: {error}", allow_retries=False) from error

    return wrapper
