"""Two CPU processes (torchrun, gloo) train what one process trains with the same global batch."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from facecraft_pipeline.gan.settings import GanSettings
from facecraft_pipeline.training.distributed import World

SCRIPT = Path(__file__).with_name("ddp_regression.py")
TOLERANCE = 1e-5  # float summation order differs between one and two processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(processes: int, *args: str) -> Path:
    """Run `args` (a script path or `-m module ...`) in `processes` processes; the run folder rank 0 printed."""
    launcher = [] if processes == 1 else ["-m", "torch.distributed.run", f"--nproc_per_node={processes}",
                                          "--master_addr=127.0.0.1", f"--master_port={free_port()}"]
    done = subprocess.run([sys.executable, *launcher, *args], capture_output=True, text=True, timeout=600,
                          env={"PYTHONPATH": str(SCRIPT.parents[2]), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1",
                               "HF_HUB_OFFLINE": "1", "MLFLOW_DISABLE_TELEMETRY": "true"})
    assert done.returncode == 0, done.stdout + done.stderr
    (folder,) = [Path(line) for line in done.stdout.splitlines() if line.strip().startswith("/")]
    return folder


def run(root: Path, processes: int, steps: int = 20) -> Path:
    return torchrun(processes, str(SCRIPT), str(root), str(steps))


def trainer_run(processes: int, trainer: str, images: Path, root: Path, settings: dict, *extra: str) -> Path:
    return torchrun(processes, "-m", "facecraft_pipeline.train_distributed", trainer, "--images", str(images),
                    "--root", str(root), "--settings", json.dumps(settings), "--device", "cpu", *extra)


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    from PIL import Image

    from facecraft_pipeline_tests.gan.conftest import drawn_faces

    folder = tmp_path_factory.mktemp("faces")
    drawn_faces(folder, 12, (64, 64))
    assert Image.open(folder / "face_00.png").size == (64, 64)
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


def assert_close(a: dict, b: dict, tolerance: float) -> None:
    """Every weight within `tolerance`, and 99% of them within 1e-6.

    The stated tolerance: sums over a batch split in two add in another order (~1e-7), and Adam turns
    such noise in a near-zero gradient into a step of up to the learning rate for that one weight.
    """
    assert a.keys() == b.keys()
    diff = torch.cat([(a[k].float() - b[k].float()).abs().flatten() for k in a if a[k].is_floating_point() and a[k].numel()])
    assert float(diff.max()) <= tolerance, f"largest difference {float(diff.max())}"
    assert float((diff > 1e-6).float().mean()) < 0.01, f"{float((diff > 1e-6).float().mean()):.1%} of the weights differ"


@pytest.mark.slow
def test_the_wgan_gp_trainer_on_two_processes_equals_one_process_with_the_same_global_batch(faces: Path, tmp_path: Path) -> None:
    settings = {"resolution": 16, "batch_size": 8, "latent_dim": 16, "base_channels": 8, "sample_count": 4, "n_critic": 2,
                "run": {"steps": 6, "checkpoint_every": 3, "log_every": 3, "sample_every": 0}}
    one = trainer_run(1, "wgan_gp", faces, tmp_path / "one", settings)
    two = trainer_run(2, "wgan_gp", faces, tmp_path / "two", settings)
    a, b = (torch.load(f / "checkpoints" / "checkpoint-0000006.pt", weights_only=True) for f in (one, two))
    defaults = GanSettings(kind="wgan_gp")
    bound = 1 / (1 - defaults.betas[1]) ** 0.5  # beta1 = 0: one Adam step moves a weight by at most lr / sqrt(1 - beta2)
    for net, lr in (("G", defaults.lr_g), ("D", defaults.lr_d)):  # the stray weight may differ by one such step
        assert_close(a[net], b[net], bound * lr)
    assert json.loads((two / "run.json").read_text())["processes"] == 2


@pytest.mark.slow
def test_the_lora_trainer_on_two_processes_equals_one_process_with_the_same_global_batch(faces: Path, tmp_path: Path) -> None:
    settings = {"resolution": 32, "batch_size": 4, "rank": 4, "learning_rate": 1e-3,
                "run": {"steps": 4, "checkpoint_every": 2, "log_every": 2, "sample_every": 0}}
    cache = str(tmp_path / "cache")
    one = trainer_run(1, "lora", faces, tmp_path / "one", settings, "--cache-dir", cache)
    two = trainer_run(2, "lora", faces, tmp_path / "two", settings, "--cache-dir", cache)
    a, b = (load_file(f / "pytorch_lora_weights.safetensors") for f in (one, two))
    assert_close(a, b, 1e-5)
    assert any(float(t.abs().sum()) > 0 for k, t in a.items() if "lora_B" in k or "lora.up" in k)  # it trained
