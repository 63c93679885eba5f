"""A failed `facecraft materialize` says why at the end: each failed asset, its reason and hint, and the log file."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from facecraft_pipeline.home import PROJECT_ROOT


def test_a_full_profile_run_without_retinaface_weights_names_the_reason_in_the_summary(tmp_path: Path) -> None:
    env = {**os.environ, "FACECRAFT_PROFILE": "full", "FACECRAFT_HOME": str(tmp_path / "home"), "TORCH_HOME": str(tmp_path / "torch"),
           "FACECRAFT_SOURCE": "demo"}  # fmt: skip
    for name in ("DAGSTER_HOME", "MLFLOW_TRACKING_URI"):  # the run's own instance and store, under its data root
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-m", "facecraft_pipeline.cli", "materialize", "--select", "+face_crops",
         "--set", "face_crops.detector.retinaface_download=false"],  # offline: no attempt at the release URL
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    summary = done.stdout[done.stdout.index("  photos") :]
    weights = tmp_path / "torch" / "hub" / "checkpoints" / "retinaface_resnet50_2020-07-20-f168fae3c.zip"
    assert re.search(r"face_crops\s+FAILED: RetinaFace weights are not cached and downloading is off\n", summary), summary
    assert f"hint: put the weights file at {weights}" in summary and "face_crops.detector.retinaface_weights" in summary
    assert "FAILURE" in summary
    log = Path(re.search(r"full log with tracebacks: (\S+)", summary).group(1))
    text = log.read_text()
    assert "WeightsNotFoundError" in text and ("Traceback" in text or "Stack Trace" in text)
    for stream in (done.stdout, done.stderr):  # the traceback went to the file, not the terminal
        assert "Stack Trace" not in stream and "Traceback (most recent call last)" not in stream


def test_a_device_that_is_missing_fails_the_steps_that_need_it_with_one_sentence(tmp_path: Path) -> None:
    env = {**os.environ, "FACECRAFT_DEVICE": "cuda", "FACECRAFT_HOME": str(tmp_path / "home"), "FACECRAFT_SOURCE": "demo",
           "CUDA_VISIBLE_DEVICES": ""}  # fmt: skip
    for name in ("DAGSTER_HOME", "MLFLOW_TRACKING_URI"):
        env.pop(name, None)
    done = subprocess.run([sys.executable, "-m", "facecraft_pipeline.cli", "materialize", "--select", "+face_crops"],
                          cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stdout + done.stderr
    assert re.search(r"face_crops\s+FAILED: device 'cuda' was asked for but CUDA is not available on this machine\n", done.stdout)
    assert "Traceback (most recent call last)" not in done.stderr
