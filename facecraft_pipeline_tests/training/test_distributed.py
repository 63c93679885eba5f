"""Two CPU processes (torchrun, gloo) train what one process trains with the same global batch."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from facecraft_pipeline.training.distributed import World

SCRIPT = Path(__file__).with_name("ddp_regression.py")
TOLERANCE = 1e-5  # float summation order differs between one and two processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(root: Path, processes: int, steps: int = 20) -> Path:
    if processes == 1:
        command = [sys.executable, str(SCRIPT), str(root), str(steps)]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={processes}", "--master_addr=127.0.0.1",
                   f"--master_port={free_port()}", str(SCRIPT), str(root), str(steps)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env={"PYTHONPATH": str(SCRIPT.parents[2]),
                                                                                      "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stdout + done.stderr
    (folder,) = [Path(line) for line in done.stdout.splitlines() if line.strip()]
    return folder


def test_a_global_batch_splits_evenly_or_says_why() -> None:
    batch = torch.arange(8)
    assert World(1, 2).shard(batch).tolist() == [4, 5, 6, 7]
    assert World().shard(batch) is batch
    with pytest.raises(ValueError, match="divisible by 3"):
        World(0, 3).shard(batch)


@pytest.mark.slow
def test_two_processes_equal_one_process_with_the_same_global_batch_and_only_rank_0_writes(tmp_path: Path) -> None:
    one, two = run(tmp_path / "one", 1), run(tmp_path / "two", 2)
    a, b = torch.load(one / "weights.pt"), torch.load(two / "weights.pt")
    for name in a:
        assert torch.allclose(a[name], b[name], atol=TOLERANCE), (name, a[name], b[name])
    assert not torch.equal(a["weight"], torch.zeros_like(a["weight"]))
    record = json.loads((two / "run.json").read_text())
    assert record["processes"] == 2 and record["status"] == "finished"
    assert [json.loads(line)["step"] for line in (two / "stats.jsonl").read_text().splitlines()] == [5, 10, 15, 20]
    assert len(list((tmp_path / "two").iterdir())) == 1  # one folder, written once
    # a run started on two processes continues on one
    longer = run(tmp_path / "two", 1, steps=30)
    assert longer == two and json.loads((two / "run.json").read_text())["sessions"][-1]["from_step"] == 20
