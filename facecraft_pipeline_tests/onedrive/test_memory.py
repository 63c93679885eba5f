"""Large photos stream to disk: memory does not grow with the file size."""

from __future__ import annotations

import hashlib
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from facecraft_pipeline_tests.onedrive.conftest import SourceFactory
from facecraft_pipeline_tests.onedrive.fake_graph import FakeGraph

SIZE = 64 * 1_000_000


def peak_memory_growth(run: Callable[[], object]) -> tuple[object, int]:
    """Bytes the process's peak RSS rose by during `run` (Linux), else peak traced Python allocations."""
    status, clear_refs = Path("/proc/self/status"), Path("/proc/self/clear_refs")

    def kib(field: str) -> int:
        line = next(x for x in status.read_text().splitlines() if x.startswith(field + ":"))
        return int(line.split()[1])

    try:
        clear_refs.write_text("5")  # resets VmHWM, the peak RSS, to the current RSS
    except OSError:
        tracemalloc.start()
        try:
            return run(), tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    before = kib("VmRSS")
    result = run()
    return result, (kib("VmHWM") - before) * 1024


def test_a_64_mb_download_grows_memory_by_a_small_fraction_of_its_size(
        fake: FakeGraph, pictures: str, make_source: SourceFactory) -> None:
    fake.add_file("small.jpg", pictures, b"s" * 100)
    make_source().sync()  # the SDK's first use imports and caches a lot: not what is measured here
    big = fake.add_file("panorama.jpg", pictures, size=SIZE, seed=42)

    report, growth = peak_memory_growth(make_source().sync)

    record = next(p for p in report.photos if p.source_id == big)
    assert record.status == "ok" and record.path.stat().st_size == SIZE
    expected = hashlib.sha256()
    with open(record.path, "rb") as handle:
        while block := handle.read(1 << 20):
            expected.update(block)
    assert record.sha256 == expected.hexdigest()
    assert growth < SIZE / 8, f"memory grew by {growth / 1e6:.1f} MB for a {SIZE / 1e6:.0f} MB file"
