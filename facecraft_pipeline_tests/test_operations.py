"""Retries for transient faults only, and the run-failure report (log line + webhook on 127.0.0.1)."""

from __future__ import annotations

import socket

import dagster as dg
import pytest

from facecraft_pipeline.operations import (
    RETRY_POLICY,
    failed_run_report,
    failure_report,
    is_transient,
    redact,
    with_op_settings,
)
from facecraft_pipeline_tests.infra.servers import Webhook

FAST = dg.RetryPolicy(max_retries=3, delay=0.01, backoff=dg.Backoff.EXPONENTIAL)


def _odata(status: int):
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError

    error = ODataError()
    error.response_status_code = status
    return error


def test_transient_faults_are_told_from_deterministic_ones():
    import httpx
    from mlflow.exceptions import RestException

    assert is_transient(ConnectionResetError("reset by peer"))
    assert is_transient(TimeoutError("timed out"))
    assert is_transient(httpx.ConnectError("refused"))
    assert is_transient(_odata(429)) and is_transient(_odata(503))
    assert is_transient(RestException({"error_code": "TEMPORARILY_UNAVAILABLE", "message": "busy"}))
    try:
        try:
            raise ConnectionRefusedError("refused")
        except ConnectionRefusedError as inner:
            raise RuntimeError("sync failed") from inner
    except RuntimeError as outer:
        assert is_transient(outer)  # the cause decides
    assert not is_transient(_odata(401)) and not is_transient(_odata(404))
    assert not is_transient(dg.Failure("no owner cluster to curate"))
    assert not is_transient(ValueError("bad settings"))
    assert not is_transient(RestException({"error_code": "INVALID_PARAMETER_VALUE", "message": "bad"}))
    assert RETRY_POLICY.max_retries >= 1 and RETRY_POLICY.backoff == dg.Backoff.EXPONENTIAL


def _flaky(fault, fails: int):
    attempts = []

    @dg.asset
    def flaky() -> int:
        attempts.append(1)
        if len(attempts) <= fails:
            raise fault
        return len(attempts)

    return with_op_settings(flaky, {}, FAST), attempts


def test_a_transient_fault_is_retried_with_backoff_until_it_passes():
    asset, attempts = _flaky(ConnectionResetError("reset by peer"), fails=2)
    with dg.instance_for_test() as instance:
        result = dg.materialize([asset], instance=instance)
        assert result.success and len(attempts) == 3
        restarts = [e for e in instance.all_logs(result.run_id) if e.dagster_event and e.dagster_event.event_type_value == "STEP_UP_FOR_RETRY"]
        assert len(restarts) == 2


@pytest.mark.parametrize("fault", [dg.Failure("photo source 'local' needs a folder"), ValueError("bad settings"), KeyError("owner")])
def test_a_deterministic_fault_fails_at_once(fault):
    asset, attempts = _flaky(fault, fails=99)
    with dg.instance_for_test() as instance:
        result = dg.materialize([asset], instance=instance, raise_on_error=False)
        assert not result.success and len(attempts) == 1


def test_a_transient_fault_that_persists_stops_after_the_policy_s_retries():
    asset, attempts = _flaky(TimeoutError("timed out"), fails=99)
    with dg.instance_for_test() as instance:
        assert not dg.materialize([asset], instance=instance, raise_on_error=False).success
    assert len(attempts) == FAST.max_retries + 1


def test_every_project_asset_carries_the_retry_policy():
    from facecraft_pipeline.definitions import ASSETS

    assert all(a.op.retry_policy == RETRY_POLICY for a in ASSETS)


def test_the_retry_policy_reads_the_environment(monkeypatch):
    from facecraft_pipeline.operations import retry_policy_from_env

    monkeypatch.setenv("FACECRAFT_RETRIES", "5")
    monkeypatch.setenv("FACECRAFT_RETRY_DELAY_S", "0.5")
    policy = retry_policy_from_env()
    assert (policy.max_retries, policy.delay, policy.backoff) == (5, 0.5, dg.Backoff.EXPONENTIAL)
    monkeypatch.setenv("FACECRAFT_RETRY_DELAY_S", "soon")
    with pytest.raises(ValueError, match="FACECRAFT_RETRY_DELAY_S"):
        retry_policy_from_env()


def _failed_run(instance, message: str):
    @dg.asset
    def curated_dataset() -> None:
        raise dg.Failure(message)

    result = dg.materialize([with_op_settings(curated_dataset, {}, FAST)], instance=instance, raise_on_error=False)
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


def test_failure_reasons_are_redacted(monkeypatch):
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "hunter2-long")
    text = "could not connect to postgresql://facecraft:hunter2-long@db:5432/dagster with Bearer eyJhbGciOiJIUzI1NiJ9.abc"
    cleaned = redact(text)
    assert "hunter2-long" not in cleaned and "eyJhbGci" not in cleaned
    assert "postgresql://facecraft:***@db:5432/dagster" in cleaned
