"""Retries for transient faults only: a transient fault is retried with backoff, any other fails at once."""

from __future__ import annotations

import socket

import dagster as dg
import pytest

from facecraft_pipeline.retries import RETRY_POLICY, final_unless_transient, is_transient, retry_policy_from_env

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

    @dg.asset(retry_policy=FAST)
    @final_unless_transient
    def flaky() -> int:
        attempts.append(1)
        if len(attempts) <= fails:
            raise fault
        return len(attempts)

    return flaky, attempts


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


def test_a_project_asset_fails_at_once_on_bad_settings(tmp_path):
    """The project's assets wear the same decorator: a local photo source without a folder is not retried
    (were it retried, the default policy would wait 10 + 20 + 40 s and log three retries)."""
    from facecraft_pipeline.assets.photos import photos as recipe
    from facecraft_pipeline.resources import HomeResource, LocalFolderResource, MlflowResource

    resources = {"home": HomeResource(root=str(tmp_path / "home")), "photo_source": LocalFolderResource(folder=""),
                 "mlflow": MlflowResource(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")}
    with dg.instance_for_test() as instance:
        result = dg.materialize([recipe.build("demo", {})], resources=resources, instance=instance, raise_on_error=False)
        steps = [e.dagster_event.event_type_value for e in instance.all_logs(result.run_id) if e.dagster_event]
    assert not result.success
    assert steps.count("STEP_FAILURE") == 1 and "STEP_UP_FOR_RETRY" not in steps


def test_every_project_asset_carries_the_retry_policy():
    from facecraft_pipeline.definitions import build_assets

    assert all(a.op.retry_policy == RETRY_POLICY for a in build_assets())


def test_the_retry_policy_reads_the_environment_the_definitions_are_built_with():
    from facecraft_pipeline.definitions import build_assets

    policy = retry_policy_from_env({"FACECRAFT_RETRIES": "5", "FACECRAFT_RETRY_DELAY_S": "0.5"})
    assert (policy.max_retries, policy.delay, policy.backoff) == (5, 0.5, dg.Backoff.EXPONENTIAL)
    assert all(a.op.retry_policy == policy for a in build_assets("demo", {"FACECRAFT_RETRIES": "5", "FACECRAFT_RETRY_DELAY_S": "0.5"}))
    with pytest.raises(ValueError, match="FACECRAFT_RETRY_DELAY_S"):
        retry_policy_from_env({"FACECRAFT_RETRY_DELAY_S": "soon"})


