"""Benchmark: OneDrive sync against the fake Graph, next to a plain sequential httpx loop.

    .venv/bin/python benchmarks/onedrive_sync.py [--photos 200] [--min-mb 2] [--max-mb 5] [--big-mb 200]
        [--results benchmarks/results/onedrive_sync.md]

The fake Graph (facecraft_pipeline_tests/onedrive/fake_graph.py) runs in its own process, so the
server does not share the client's GIL. Each contender runs in a fresh process and is timed from
its first request to its last byte on disk; its memory is the rise of the process's peak RSS
during that time (Linux VmHWM, reset just before). Scenarios:

1. First sync of N photos (random 2-5 MB): `OneDriveSource.sync()` (delta listing, streaming,
   size + QuickXorHash check, sha256, journal) with max_concurrency 1 and 4, against the
   reference: list with the delta API, then for each file GET /content with redirects followed
   and stream it to disk (httpx, one file at a time, no verification, no state).
2. One big file (200 MB): the same contenders.
3. Re-sync after one new photo: the source downloads one file; the reference has no state and
   downloads everything again.
Mirror folders go under benchmarks/out/ (git-ignored) and are deleted as soon as they are measured.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUT = ROOT / "benchmarks" / "out" / "onedrive_sync"
MB = 1_000_000


# -- the server process ----------------------------------------------------------------------------


def serve(conn: Connection, folders: dict[str, list[int]]) -> None:
    """Run a fake Graph holding one folder per entry (file sizes in bytes) until told to stop."""
    from facecraft_pipeline_tests.onedrive.fake_graph import FakeGraph

    with FakeGraph(page_size=200) as fake:
        for folder, sizes in folders.items():
            parent = fake.add_folder(folder)
            for index, size in enumerate(sizes):
                fake.add_file(f"IMG_{index:05d}.jpg", parent, size=size, seed=index + 1)
        conn.send((fake.base_url, fake.token))
        while (message := conn.recv()) != "stop":
            folder, name = message
            fake.add_file(name, fake._by_path(folder), size=3 * MB, seed=len(name) + 999_999)
            conn.send("added")


# -- the contenders --------------------------------------------------------------------------------


def _reset_peak() -> int:
    Path("/proc/self/clear_refs").write_text("5")
    return _status_kib("VmRSS")


def _status_kib(field: str) -> int:
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(field + ":"))
    return int(line.split()[1])


def run_source(base_url: str, token: str, folder: str, root: str, concurrency: int) -> dict[str, float]:
    import facecraft_pipeline.sources.onedrive as onedrive
    from facecraft_pipeline.sources.onedrive_settings import OneDriveSettings
    from facecraft_pipeline_tests.onedrive.conftest import StaticToken

    settings = OneDriveSettings(graph_base_url=base_url, folder=f"/{folder}", max_concurrency=concurrency,
                                max_file_mb=1000.0)
    source = onedrive.OneDriveSource(settings, Path(root) / "mirror", Path(root) / "state", StaticToken(token))
    before = _reset_peak()
    start = time.perf_counter()
    report = source.sync()
    seconds = time.perf_counter() - start
    fetched = [p for p in report.ok if p.source_id in set(report.added) | set(report.changed)]
    return {"seconds": seconds, "files": len(fetched), "bytes": sum(p.size for p in fetched),
            "peak_mb": (_status_kib("VmHWM") - before) / 1000, "failed": len(report.photos) - len(report.ok)}


def run_reference(base_url: str, token: str, folder: str, root: str, concurrency: int) -> dict[str, float]:
    """What a first attempt looks like: list with delta, then download one file after another."""
    import httpx

    mirror = Path(root) / "mirror"
    mirror.mkdir(parents=True, exist_ok=True)
    before = _reset_peak()
    start = time.perf_counter()
    files, total = 0, 0
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=60.0) as client:
        drive = client.get(f"{base_url}/me/drive").json()["id"]
        item = client.get(f"{base_url}/drives/{drive}/root:/{folder}").json()["id"]
        url: str | None = f"{base_url}/drives/{drive}/items/{item}/delta"
        entries: list[dict[str, Any]] = []
        while url:
            page = client.get(url).json()
            entries.extend(page["value"])
            url = page.get("@odata.nextLink")
        for entry in entries:
            if "file" not in entry:
                continue
            content = f"{base_url}/drives/{drive}/items/{entry['id']}/content"
            with client.stream("GET", content, follow_redirects=True) as response, \
                    open(mirror / entry["name"], "wb") as handle:
                response.raise_for_status()
                for chunk in response.iter_bytes():
                    handle.write(chunk)
                    total += len(chunk)
            files += 1
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "files": files, "bytes": total,
            "peak_mb": (_status_kib("VmHWM") - before) / 1000, "failed": 0}


def in_fresh_process(target: str, *args: Any) -> dict[str, float]:
    """Run a contender in its own process: clean memory figures, no GIL shared with anything."""
    context = mp.get_context("spawn")
    with context.Pool(1) as pool:
        return pool.apply(globals()[target], args)


# -- the benchmark ---------------------------------------------------------------------------------


@dataclass
class Row:
    """One contender in one scenario: the median of its repetitions (peak memory: the largest)."""

    scenario: str
    contender: str
    runs: list[dict[str, float]]

    @property
    def seconds(self) -> float:
        return statistics.median(r["seconds"] for r in self.runs)

    def cells(self) -> list[str]:
        r, seconds = self.runs[0], self.seconds
        spread = f"{min(x['seconds'] for x in self.runs):.2f}-{max(x['seconds'] for x in self.runs):.2f}"
        return [self.scenario, self.contender, f"{r['files']:.0f}", f"{r['bytes'] / MB:.0f}", f"{seconds:.2f}",
                spread, f"{r['files'] / seconds:.1f}", f"{r['bytes'] / MB / seconds:.0f}",
                f"{max(x['peak_mb'] for x in self.runs):.1f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--min-mb", type=float, default=2.0)
    parser.add_argument("--max-mb", type=float, default=5.0)
    parser.add_argument("--big-mb", type=float, default=200.0)
    parser.add_argument("--repeat", type=int, default=3, help="runs per contender and scenario (median reported)")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / "onedrive_sync.md")
    args = parser.parse_args()

    import random

    rng = random.Random(0)
    sizes = [int(rng.uniform(args.min_mb, args.max_mb) * MB) for _ in range(args.photos)]
    folders = {"Photos": sizes, "Big": [int(args.big_mb * MB)]}
    shutil.rmtree(OUT, ignore_errors=True)
    parent, child = mp.get_context("spawn").Pipe()
    server = mp.get_context("spawn").Process(target=serve, args=(child, folders), daemon=True)
    server.start()
    base_url, token = parent.recv()
    rows: list[Row] = []

    def contest(scenario: str, folder: str, contenders: list[tuple[str, str, int]], fresh: bool = True,
                before_each: Callable[[int], None] | None = None, keep: str = "") -> None:
        """Run every contender `args.repeat` times; mirrors are deleted after each run except `keep`."""
        runs: dict[str, list[dict[str, float]]] = {label: [] for label, _, _ in contenders}
        for repetition in range(args.repeat):  # interleaved, so that a noisy moment hits everyone
            if before_each is not None:
                before_each(repetition)
            for label, target, concurrency in contenders:
                name = f"{folder}-{label.replace(' ', '_').replace(',', '')}" + (f"-{repetition}" if fresh else "")
                root = OUT / name
                if fresh or target == "run_reference":
                    shutil.rmtree(root, ignore_errors=True)
                runs[label].append(in_fresh_process(target, base_url, token, folder, str(root), concurrency))
                if root.name != keep:
                    shutil.rmtree(root, ignore_errors=True)
        for label, _, _ in contenders:
            rows.append(Row(scenario, label, runs[label]))
            print(" | ".join(rows[-1].cells()), flush=True)

    def add_photo(repetition: int) -> None:
        parent.send(("Photos", f"IMG_new_{repetition}.jpg"))
        parent.recv()

    try:
        ours = ("OneDriveSource, concurrency 4", "run_source", 4)
        ours_serial = ("OneDriveSource, concurrency 1", "run_source", 1)
        reference = ("reference httpx loop", "run_reference", 1)
        kept = "Photos-OneDriveSource_concurrency_4-0"
        contest(f"first sync, {args.photos} photos", "Photos", [ours, ours_serial, reference], keep=kept)
        contest(f"first sync, one {args.big_mb:.0f} MB file", "Big", [ours, ours_serial, reference])
        # The source re-syncs the mirror of its first repetition above; the reference has no state.
        (OUT / kept).rename(OUT / "Photos-OneDriveSource_concurrency_4")
        contest("re-sync after 1 new photo", "Photos", [ours, reference], fresh=False, before_each=add_photo,
                keep="Photos-OneDriveSource_concurrency_4")
    finally:
        parent.send("stop")
        server.join(timeout=10)
        shutil.rmtree(OUT, ignore_errors=True)  # about 1 GB per kept mirror
    write_results(args, rows)


def write_results(args: argparse.Namespace, rows: list[Row]) -> None:
    header = ["scenario", "contender", "files fetched", "MB", "seconds (median)", "range", "photos/s", "MB/s",
              "peak RSS rise (MB)"]
    lines = [
        "# OneDrive sync benchmark",
        "",
        f"`.venv/bin/python benchmarks/onedrive_sync.py --photos {args.photos} --min-mb {args.min_mb:g} "
        f"--max-mb {args.max_mb:g} --big-mb {args.big_mb:g} --repeat {args.repeat}`",
        "",
        f"Machine: {platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f} at the end. Fake Graph on loopback in its own process "
        "(Python http.server), so absolute MB/s are bounded by the fake server and the local disk, "
        "not by a network. Each figure is the median of the repetitions, contenders interleaved; each run in "
        "a fresh process, timed from its first request to its last byte on disk. The source also computes "
        "sha256 and QuickXorHash of every byte, writes a temp file + rename and journals each file; the "
        "reference does none of that.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    by = {(r.scenario, r.contender): r for r in rows}
    lines += ["", "Ratios (reference seconds / OneDriveSource seconds, concurrency 4):", ""]
    for scenario in dict.fromkeys(r.scenario for r in rows):
        ours = by.get((scenario, "OneDriveSource, concurrency 4"))
        ref = by.get((scenario, "reference httpx loop"))
        if ours and ref:
            lines.append(f"- {scenario}: {ref.seconds / ours.seconds:.2f}x")
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"\nwrote {args.results}")


if __name__ == "__main__":
    main()
