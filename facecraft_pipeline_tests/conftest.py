"""Suite-wide settings: offline, and one torch thread.

The networks under test are tiny; on a 2-core machine two OpenMP threads spin-wait against each
other (and against dlib's thread pool) and ran 5-10x slower than one.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # nothing in these tests may reach a hub
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
