"""One process pool per Python process for the CPU-bound dlib work: decode, detect, align, judge, PNG.

Why processes: dlib's HOG releases the GIL, but the Python around each photo (decoding, quality
measures, PNG encoding) holds it; with threads two cores gave 1.5x. (The identity embedding needs
no pool: its network runs in PyTorch, batched, on the configured device; `dlib_resnet.py`.) Each
worker loads its own models once (lazily, on first use) and keeps them for the life of the pool,
so a second `extract_faces` in the same process pays nothing to start.

The pool uses the `forkserver` start method where it exists (a clean process, forked from a server
that has imported the face modules once: safe under Dagster's threads, ~0.1 s per worker instead of
a fresh interpreter), else `spawn`. It is shut down at interpreter exit. Results are the same as
in-process work, bit for bit: the same functions run on the same inputs.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

_LOCK = threading.Lock()
_POOL: ProcessPoolExecutor | None = None
_SIZE = 0
_PRELOAD = ["facecraft_pipeline.faces.extract"]
MAX_WORKERS = 8  # each worker holds its own dlib models (the 68-point predictor alone is ~100 MB)


def worker_count(requested: int) -> int:
    """`requested`, or one per CPU core (at most MAX_WORKERS) when 0."""
    return requested if requested > 0 else max(1, min(MAX_WORKERS, os.cpu_count() or 1))


def get_pool(workers: int) -> ProcessPoolExecutor:
    """The shared pool with `workers` processes (re-created if its size changed or it broke)."""
    global _POOL, _SIZE
    with _LOCK:
        if _POOL is not None and (_SIZE != workers or getattr(_POOL, "_broken", False)):
            _POOL.shutdown(wait=False, cancel_futures=True)
            _POOL = None
        if _POOL is None:
            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
            if context.get_start_method() == "forkserver":
                context.set_forkserver_preload(_PRELOAD)
            _POOL, _SIZE = ProcessPoolExecutor(max_workers=workers, mp_context=context), workers
        return _POOL


def discard_pool() -> None:
    """Shut the pool down (after a worker crashed, or at exit)."""
    global _POOL
    with _LOCK:
        if _POOL is not None:
            _POOL.shutdown(wait=False, cancel_futures=True)
            _POOL = None


def warm_up(workers: int, task, *args) -> None:  # noqa: ANN001
    """Run `task(*args)` once in every worker (each call also waits a little, so they spread)."""
    pool = get_pool(workers)
    list(pool.map(_call_and_linger, [(task, args)] * workers))


def _call_and_linger(job) -> None:  # noqa: ANN001
    task, args = job
    task(*args)
    time.sleep(0.3)


atexit.register(discard_pool)

__all__ = ["BrokenProcessPool", "MAX_WORKERS", "discard_pool", "get_pool", "warm_up", "worker_count"]
