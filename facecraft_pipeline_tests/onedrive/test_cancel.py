"""Stopping a sync: an interrupt reaches every download at once; a stalled download has a deadline."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from facecraft_pipeline.home import PROJECT_ROOT
from facecraft_pipeline_tests.onedrive.conftest import SourceFactory
from facecraft_pipeline_tests.onedrive.fake_graph import FakeGraph


def default_sigint() -> None:
    """A child of a background job inherits an ignored SIGINT; give it the default, as a terminal would."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("mode", ["plain", "dagster"], ids=["ctrl-c", "dagster-run-cancel"])
def test_sigint_during_a_stalled_download_stops_the_sync_at_once_and_keeps_what_finished(
        fake: FakeGraph, pictures: str, make_source: SourceFactory, tmp_path: Path, mode: str) -> None:
    small = [fake.add_file(f"small{i}.jpg", pictures, bytes([i]) * 20_000) for i in range(3)]
    stalled = fake.add_file("stalled.jpg", pictures, size=2_000_000, seed=3)
    fake.fail_download(stalled, ("stall",))  # half the body, then silence (the read timeout is 60 s)
    child = subprocess.Popen(
        [sys.executable, "-m", "facecraft_pipeline_tests.onedrive.sync_child", fake.base_url, fake.token,
         str(tmp_path), mode],
        cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=default_sigint,
    )
    try:
        assert fake.wait_until_held(1, timeout=90), "the stalled download started"
        deadline = time.monotonic() + 30
        while fake.downloads() < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert fake.downloads() == 3
        time.sleep(0.3)  # the finished files are journaled as they finish

        child.send_signal(signal.SIGINT)
        started = time.monotonic()
        out, err = child.communicate(timeout=30)
        stopped_after = time.monotonic() - started
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert "finished" not in out, err
    assert child.returncode != 0
    assert stopped_after < 5.0, f"the process took {stopped_after:.1f} s to stop after SIGINT:\n{err[-2000:]}"

    fake.clear_faults(stalled)
    report = make_source().sync()
    assert len(report.ok) == 4
    assert all(fake.downloads(item) == 1 for item in small), "what finished before the interrupt is kept"
    assert fake.downloads(stalled) == 1
    assert not list((tmp_path / "mirror").glob(".*.part")), "no temp file left behind"


def test_a_download_past_its_deadline_fails_that_photo_and_the_sync_goes_on(
        fake: FakeGraph, pictures: str, make_source: SourceFactory) -> None:
    fine = fake.add_file("fine.jpg", pictures, b"f" * 5000)
    slow = fake.add_file("slow.jpg", pictures, size=1_000_000, seed=5)
    fake.fail_download(slow, ("stall",), always=True)

    started = time.monotonic()
    report = make_source(download_deadline_s=1.0, max_attempts=2).sync()
    took = time.monotonic() - started

    records = {p.source_id: p for p in report.photos}
    assert records[fine].status == "ok"
    assert records[slow].status == "failed" and "1 s download deadline" in records[slow].reason
    assert len(fake.download_requests(slow)) == 2
    assert took < 20, f"two 1 s deadlines, not two 60 s read timeouts ({took:.1f} s)"


def test_the_deadline_and_the_read_timeout_are_validated_settings() -> None:
    from facecraft_pipeline.sources.onedrive_settings import OneDriveSettings

    with pytest.raises(ValueError, match="OneDriveSettings.download_deadline_s must be > 0"):
        OneDriveSettings(download_deadline_s=0)
    with pytest.raises(ValueError, match="OneDriveSettings.max_concurrency must be >= 1"):
        OneDriveSettings(max_concurrency=0)


if os.name == "nt":  # pragma: no cover
    pytestmark = pytest.mark.skip(reason="POSIX signals")
