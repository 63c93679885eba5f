"""`facecraft materialize` runs the whole graph with independent steps (the trainers) in parallel processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from facecraft_pipeline.home import PROJECT_ROOT
from facecraft_pipeline.resources import ComputeResource

SHORT = ["gan_checkpoint.run.steps=40", "gan_checkpoint.run.checkpoint_every=20", "gan_checkpoint.quality_every=0",
         "wgan_gp_checkpoint.run.steps=40", "wgan_gp_checkpoint.run.checkpoint_every=20", "wgan_gp_checkpoint.quality_every=0",
         "lora_weights.run.steps=4", "lora_weights.run.checkpoint_every=2",
         "sample_galleries.samples_per_model=4", "sample_galleries.num_inference_steps=2"]


def run_cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "FACECRAFT_HOME": str(home), "FACECRAFT_SOURCE": "demo"}
    for name in ("DAGSTER_HOME", "MLFLOW_TRACKING_URI"):  # the run's own instance and store, under its data root
        env.pop(name, None)
    command = [sys.executable, "-m", "facecraft_pipeline.cli", "materialize", *args, *(x for s in SHORT for x in ("--set", s))]
    return subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=1200)


def step_windows(home: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[float, float]]:
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))  # the instance's dagster.yaml names its folders by it
    with dg.DagsterInstance.get() as instance:
        (run,) = instance.get_runs(limit=1)
        return {s.step_key: (s.start_time, s.end_time) for s in instance.get_run_step_stats(run.run_id)}


@pytest.mark.slow
def test_the_trainers_run_at_the_same_time_in_separate_processes_and_the_run_succeeds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    done = run_cli(tmp_path / "home", "--steps-at-once", "3")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "SUCCESS" in done.stdout and "champion:" in done.stdout
    windows = step_windows(tmp_path / "home", monkeypatch)
    gan, wgan, lora = windows["gan_checkpoint"], windows["wgan_gp_checkpoint"], windows["lora_weights"]
    assert max(gan[0], wgan[0], lora[0]) < min(gan[1], wgan[1], lora[1]), windows  # all three were running at one moment
    assert windows["sample_galleries"][0] >= max(gan[1], wgan[1], lora[1])  # the evaluation waits for every model
    (log,) = (tmp_path / "home" / "logs").glob("materialize-*.log")  # every process's events, each line with its pid
    starts = [line.split(" - ") for line in log.read_text().splitlines() if "- STEP_START -" in line]
    pids = {parts[2] for parts in starts if any(name in parts for name in ("gan_checkpoint", "wgan_gp_checkpoint", "lora_weights"))}
    assert len(pids) == 3, starts


def test_a_step_process_per_core_when_each_step_uses_one_torch_thread() -> None:
    cores = len(os.sched_getaffinity(0))
    assert ComputeResource(cpu_threads=1).step_processes() == cores
    assert ComputeResource(cpu_threads=cores).step_processes() == 1
    assert ComputeResource(cpu_threads=0).step_processes() == 1  # torch's default already takes every core
