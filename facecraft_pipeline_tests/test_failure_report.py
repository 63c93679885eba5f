"""The run-failure report: the failed asset and the reason, as a log line and a webhook POST (on 127.0.0.1), redacted."""

from __future__ import annotations

import socket

import dagster as dg

from facecraft_pipeline.failure_report import failed_run_report, failure_report
from facecraft_pipeline.log_safety import redact
from facecraft_pipeline.retries import final_unless_transient
from facecraft_pipeline_tests.infra.servers import Webhook

FAST = dg.RetryPolicy(max_retries=3, delay=0.01, backoff=dg.Backoff.EXPONENTIAL)


def _failed_run(instance, fault: str | Exception):
    """The failure-sensor context of a run whose one asset raised `fault` (a string: a dg.Failure)."""
    @dg.asset(retry_policy=FAST)
    @final_unless_transient
    def curated_dataset() -> None:
        raise dg.Failure(fault) if isinstance(fault, str) else fault

    result = dg.materialize([curated_dataset], instance=instance, raise_on_error=False)
    (record,) = instance.get_records_for_run(result.run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
    return dg.build_run_status_sensor_context(
        sensor_name="failed_run_report",
        dagster_event=record.event_log_entry.dagster_event,
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(result.run_id),
    ).for_run_failure()


def test_the_failure_sensor_names_the_asset_and_reason_and_posts_them(monkeypatch, caplog):
    with dg.instance_for_test() as instance, Webhook() as hook:
        context = _failed_run(instance, "no owner cluster to curate: 0 faces")
        assert failure_report(context)["failed"] == [{"asset": "curated_dataset", "reason": "no owner cluster to curate: 0 faces"}]
        monkeypatch.setenv("FACECRAFT_FAILURE_WEBHOOK_URL", hook.url("/hook/tok-9d8e7f6a5b"))
        with caplog.at_level("DEBUG"):
            failed_run_report(context)
        ((path, body),) = hook.received
        assert path == "/hook/tok-9d8e7f6a5b"
        assert body["failed"] == [{"asset": "curated_dataset", "reason": "no owner cluster to curate: 0 faces"}]
        assert body["run_id"] == context.dagster_run.run_id
        assert "failed: asset curated_dataset: no owner cluster to curate" in caplog.text
        assert "tok-9d8e7f6a5b" not in caplog.text


def test_without_a_webhook_the_report_is_a_log_line_and_a_dead_webhook_is_not_fatal(monkeypatch, caplog):
    with dg.instance_for_test() as instance:
        context = _failed_run(instance, "boom")
        monkeypatch.delenv("FACECRAFT_FAILURE_WEBHOOK_URL", raising=False)
        with caplog.at_level("INFO"):
            failed_run_report(context)
        assert "failed: asset curated_dataset: boom" in caplog.text
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]  # nothing listens there once closed
        monkeypatch.setenv("FACECRAFT_FAILURE_WEBHOOK_URL", f"http://127.0.0.1:{port}/hook/secret-abc123")
        failed_run_report(context)
        assert "failure webhook unreachable" in caplog.text and "secret-abc123" not in caplog.text


def test_an_unexpected_error_is_reported_by_its_type_and_message():
    with dg.instance_for_test() as instance:
        context = _failed_run(instance, ValueError("GanSettings.resolution must be a power of 2, got 48"))
        assert failure_report(context)["failed"] == [
            {"asset": "curated_dataset", "reason": "ValueError: GanSettings.resolution must be a power of 2, got 48"}]


def test_failure_reasons_are_redacted(monkeypatch):
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "hunter2-long")
    text = "could not connect to postgresql://facecraft:hunter2-long@db:5432/dagster with Bearer eyJhbGciOiJIUzI1NiJ9.abc"
    cleaned = redact(text)
    assert "hunter2-long" not in cleaned and "eyJhbGci" not in cleaned
    assert "postgresql://facecraft:***@db:5432/dagster" in cleaned
