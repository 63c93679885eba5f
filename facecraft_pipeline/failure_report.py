"""A report for every failed run: which asset failed and why, as a log line and, when
`FACECRAFT_FAILURE_WEBHOOK_URL` is set, a JSON POST to that URL (the URL usually holds a token: it
is never logged). Reasons go through `log_safety.redact` first.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Mapping
from typing import Any

import dagster as dg

from facecraft_pipeline.env import env_optional
from facecraft_pipeline.log_safety import redact

log = logging.getLogger("facecraft.failure_report")

WEBHOOK_ENV = "FACECRAFT_FAILURE_WEBHOOK_URL"


def _reason(event: dg.DagsterEvent) -> str:
    """A `dg.Failure`'s description (our own sentence), else the last line of the error."""
    failure = event.step_failure_data.user_failure_data
    if failure is not None and failure.description:
        return failure.description.strip()
    error = event.step_failure_data.error
    return error.message.strip().splitlines()[-1] if error and error.message.strip() else "unknown"


def failure_report(context: dg.RunFailureSensorContext) -> dict[str, Any]:
    """Which asset failed and why, from the run's step-failure events."""
    run = context.dagster_run
    failed = [{"asset": event.step_key, "reason": redact(_reason(event))} for event in context.get_step_failure_events()]
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
    url = (env_optional(WEBHOOK_ENV) or "").strip()
    if url:
        try:
            status = post_webhook(url, report)
            say(logging.INFO, f"failure report sent to the webhook (HTTP {status})")
        except Exception as error:  # noqa: BLE001 - a dead webhook must not kill the sensor
            say(logging.WARNING, f"failure webhook unreachable: {type(error).__name__}")
