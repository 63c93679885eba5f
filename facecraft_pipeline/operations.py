"""Running unattended: retries for transient faults, a report for every failed run.

- `is_transient(error)`: network faults, timeouts, throttling (HTTP 429/5xx, Graph past its own
  retries), a database connection dropped. Everything else (bad settings, no owner cluster, a
  corrupt file) is deterministic: retrying it would fail the same way.
- `RETRY_POLICY`: exponential backoff with jitter for the transient ones. `deployable(assets)`
  puts it on every asset's op, turns deterministic errors into `dg.Failure(allow_retries=False)`
  so the policy skips them, and adds the `dagster-k8s/config` tags of `deploy.py`.
- `failed_run_report`: a run-failure sensor naming the failed asset and the reason, as a log line
  and, when `FACECRAFT_FAILURE_WEBHOOK_URL` is set, a JSON POST to that URL (the URL usually
  holds a token: it is never logged).
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import os
import re
import urllib.request
from collections.abc import Iterable, Mapping
from typing import Any

import dagster as dg

from facecraft_pipeline.deploy import K8sSettings, step_tags

log = logging.getLogger("facecraft.operations")

WEBHOOK_ENV = "FACECRAFT_FAILURE_WEBHOOK_URL"
TRANSIENT_HTTP = {408, 425, 429, 500, 502, 503, 504}

RETRY_POLICY = dg.RetryPolicy(max_retries=3, delay=10.0, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


def retry_policy_from_env() -> dg.RetryPolicy:
    """RETRY_POLICY with FACECRAFT_RETRIES and FACECRAFT_RETRY_DELAY_S (seconds before the first retry; doubles)."""
    from facecraft_pipeline.env import env_int, env_str

    retries = env_int("FACECRAFT_RETRIES", RETRY_POLICY.max_retries)
    try:
        delay = float(env_str("FACECRAFT_RETRY_DELAY_S", str(RETRY_POLICY.delay)))
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
    transient_types = {
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
    if names & transient_types:
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


def _deterministic_failures(fn):
    """Let transient errors reach the retry policy; turn every other error into a final Failure."""
    if inspect.isgeneratorfunction(fn) or inspect.iscoroutinefunction(fn):
        return fn

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


def with_op_settings(assets_def: dg.AssetsDefinition, tags: Mapping[str, Any], retry_policy: dg.RetryPolicy | None) -> dg.AssetsDefinition:
    """The same asset with extra op tags, a retry policy and deterministic errors marked final."""
    op = assets_def.op
    compute_fn = op.compute_fn
    if hasattr(compute_fn, "decorated_fn"):
        compute_fn = compute_fn._replace(decorated_fn=_deterministic_failures(compute_fn.decorated_fn))
    new_op = dg.OpDefinition.dagster_internal_init(
        name=op.name,
        ins={d.name: dg.In.from_definition(d) for d in op.input_defs},
        outs={d.name: dg.Out.from_definition(d) for d in op.output_defs},
        compute_fn=compute_fn,
        config_schema=op.config_schema,
        description=op.description,
        tags={**op.tags, **tags},
        required_resource_keys=op.required_resource_keys,
        code_version=op.version,
        retry_policy=retry_policy or op.retry_policy,
        version=None,
        pool=op.pool,
    )
    return dg.AssetsDefinition.dagster_internal_init(**{**assets_def.get_attributes_dict(), "node_def": new_op})


def deployable(
    assets: Iterable[dg.AssetsDefinition], retry_policy: dg.RetryPolicy | None = None, k8s: K8sSettings | None = None
) -> list[dg.AssetsDefinition]:
    """Every asset with the retry policy (default: from the environment) and its Kubernetes step tags
    (GPU for the accelerator pool)."""
    retry_policy = retry_policy or retry_policy_from_env()
    k8s = k8s or K8sSettings.from_env()
    out = []
    for a in assets:
        groups = {a.group_names_by_key.get(k) for k in a.keys}
        tags = step_tags(a.op.pool, groups.pop() if len(groups) == 1 else None, k8s)
        out.append(with_op_settings(a, tags, retry_policy))
    return out


def everything_on_kubernetes() -> dg.UnresolvedAssetJobDefinition:
    """The whole graph with one Kubernetes pod per step (dagster-k8s' k8s_job_executor): each step's
    pod gets its op's `dagster-k8s/config` tags, so training steps get their GPU and nothing else does.
    Launch it with deploy/k8s-run-config.yaml under the K8sRunLauncher (deploy/dagster-k8s.yaml)."""
    from dagster_k8s import k8s_job_executor

    return dg.define_asset_job(
        "everything_k8s",
        selection=dg.AssetSelection.all(),
        executor_def=k8s_job_executor,
        description="The whole graph on Kubernetes, one pod per step (GPU only for training and sampling steps).",
    )


# --- secrets: what may never reach a log line, a webhook or metadata ---------------------------

SECRET_ENV_WORDS = ("PASSWORD", "TOKEN", "SECRET", "CREDENTIAL", "WEBHOOK", "API_KEY")
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]+):(?P<pw>[^@/\s]+)@", re.IGNORECASE)
_BEARER = re.compile(r"(?i)(bearer\s+)[a-z0-9._~+/=-]{8,}")


def secret_values(env: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if env is None else env
    return sorted({v for k, v in env.items() if v and len(v) >= 6 and any(w in k.upper() for w in SECRET_ENV_WORDS)}, key=len, reverse=True)


def redact(text: str, env: Mapping[str, str] | None = None) -> str:
    """Mask URL passwords, bearer tokens, header values and URL queries (log_safety), and the values of
    secret-looking environment variables."""
    from facecraft_pipeline.log_safety import redact as redact_http

    text = redact_http(text)
    text = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    text = _BEARER.sub(r"\1***", text)
    for value in secret_values(env):
        text = text.replace(value, "***")
    return text


# --- the failure report ------------------------------------------------------------------------


def failure_report(context: dg.RunFailureSensorContext) -> dict[str, Any]:
    """Which asset failed and why, from the run's step-failure events."""
    run = context.dagster_run
    failed = []
    for event in context.get_step_failure_events():
        error = event.step_failure_data.error
        reason = error.message.strip().splitlines()[-1] if error and error.message.strip() else "unknown"
        reason = reason.removeprefix("dagster._core.definitions.events.Failure: ")
        failed.append({"asset": event.step_key, "reason": redact(reason)})
    if not failed:
        message = context.failure_event.message or "run failed before any step ran"
        failed.append({"asset": None, "reason": redact(message)})
    return {"run_id": run.run_id, "job": run.job_name, "failed": failed}


def post_webhook(url: str, payload: Mapping[str, Any], timeout: float = 10.0) -> int:
    body = json.dumps(payload).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 - a URL the owner configured
        return answer.status


@dg.run_failure_sensor(
    name="failed_run_report",
    description="Reports each failed run: the failed asset and the reason (log line; JSON POST to FACECRAFT_FAILURE_WEBHOOK_URL if set).",
    default_status=dg.DefaultSensorStatus.RUNNING,
    monitor_all_code_locations=False,
)
def failed_run_report(context: dg.RunFailureSensorContext) -> None:
    report = failure_report(context)
    def say(level: int, message: str) -> None:  # the sensor's tick log (UI) and the process log
        context.log.log(level, message)
        log.log(level, message)

    for item in report["failed"]:
        say(logging.ERROR, f"run {report['run_id']} ({report['job']}) failed: asset {item['asset']}: {item['reason']}")
    url = os.environ.get(WEBHOOK_ENV, "").strip()
    if url:
        try:
            status = post_webhook(url, report)
            say(logging.INFO, f"failure report sent to the webhook (HTTP {status})")
        except Exception as error:  # noqa: BLE001 - a dead webhook must not kill the sensor
            say(logging.WARNING, f"failure webhook unreachable: {type(error).__name__}")
