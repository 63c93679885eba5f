"""Benchmark: a library of N tiny photos -- first run, nothing changed, one photo added.

    .venv/bin/python benchmarks/library_scale.py [--sizes 2000 100000] [--poll-sizes 1000000]
        [--workdir /tmp/facecraft-scale] [--results benchmarks/results/library_scale.md] [--keep]

For each N in --sizes: a local folder of N distinct 96 px JPEGs without faces (1,000 per
sub-folder, like a camera's), then `facecraft materialize --select 'key:photos or key:face_crops'`
(demo profile, local-folder source) three times in fresh processes: the first run, a re-run with
nothing changed, a re-run after one photo was added. Per run: the `photos` and `face_crops` step
times from the Dagster event log, the whole process, the peak RSS of the largest process (the
run or one of its face workers) and the data root's size. Plus the new-photos sensor's question
(`LocalFolderSource.check_for_changes`) on the unchanged and the one-added library.
For each N in --poll-sizes: only that folder check, on N files in ONE folder (the edge case).
Everything is written under --workdir (deleted at the end unless --keep); results as markdown.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from facecraft_pipeline.sources.local import LocalFolderSource  # noqa: E402

PER_FOLDER = 1000
SELECT = "key:photos or key:face_crops"


def tiny_jpeg() -> bytes:
    """One 96 px JPEG without a face (smooth noise)."""
    rng = np.random.default_rng(0)
    pixels = (rng.random((12, 12, 3)) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).resize((96, 96), Image.BILINEAR).save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def unique(base: bytes, number: int) -> bytes:
    """The same pixels with a JPEG comment naming the photo: distinct bytes (and sha256), same decode."""
    text = f"facecraft scale benchmark photo {number}".encode()
    return base[:2] + b"\xff\xfe" + (len(text) + 2).to_bytes(2, "big") + text + base[2:]


def build_library(folder: Path, count: int, per_folder: int = PER_FOLDER) -> None:
    base = tiny_jpeg()
    for number in range(count):
        sub = folder / f"{number // per_folder:04d}" if per_folder else folder
        if number == 0 or (per_folder and number % per_folder == 0):
            sub.mkdir(parents=True, exist_ok=True)
        fd = os.open(sub / f"IMG_{number:07d}.jpg", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, unique(base, number))
        os.close(fd)


def step_seconds(dagster_home: Path, run_id: str) -> dict[str, float]:
    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(dagster_home)  # the instance's dagster.yaml reads it
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        records = instance.get_records_for_run(
            run_id, of_type={dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS}, limit=100
        ).records
    starts, out = {}, {}
    for record in records:
        entry = record.event_log_entry
        if entry.dagster_event.event_type == dg.DagsterEventType.STEP_START:
            starts[entry.step_key] = entry.timestamp
        else:
            out[entry.step_key] = entry.timestamp - starts[entry.step_key]
    return out


def folder_size(path: Path) -> int:
    total = 0
    for dirpath, _, names in os.walk(path):
        for name in names:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
            except OSError:
                pass
    return total


def materialize(home: Path, photos: Path) -> dict[str, float]:
    env = {**os.environ, "FACECRAFT_HOME": str(home), "FACECRAFT_SOURCE": "local", "FACECRAFT_PHOTOS_DIR": str(photos),
           "FACECRAFT_PROFILE": "demo", "DAGSTER_HOME": str(home / "dagster")}
    env.pop("MLFLOW_TRACKING_URI", None)
    peak_file = home.parent / "peak_rss_kib"
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _PEAK_WRAPPER, str(peak_file), sys.executable, "-m", "facecraft_pipeline.cli",
                           "materialize", "--select", SELECT], env=env, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - started
    peak, cpu = peak_file.read_text().split()
    if done.returncode != 0:
        raise SystemExit(f"materialize failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    run_id = re.search(r"Dagster run (\S+): SUCCESS", done.stdout).group(1)  # type: ignore[union-attr]
    steps = step_seconds(home / "dagster", run_id)
    return {"photos": steps.get("photos", float("nan")), "face_crops": steps.get("face_crops", float("nan")), "process": wall,
            "cpu": float(cpu), "load": os.getloadavg()[0], "peak_mib": int(peak) / 1024, "data_mib": folder_size(home) / 2**20}


# Runs the command as its child and writes the largest peak RSS (VmHWM, KiB) among it and every process below it
# (step processes and face workers are started by forkservers, so RUSAGE_CHILDREN alone does not see them),
# sampled every 0.2 s, and the command's own CPU seconds.
_PEAK_WRAPPER = """
import resource, subprocess, sys, time, psutil
def hwm(pid):
    try:
        return max([int(line.split()[1]) for line in open(f'/proc/{pid}/status') if line.startswith('VmHWM:')] + [0])
    except OSError:
        return 0
child, peak = subprocess.Popen(sys.argv[2:]), 0
while child.poll() is None:
    try:
        pids = [child.pid] + [p.pid for p in psutil.Process(child.pid).children(recursive=True)]
    except psutil.Error:
        pids = []
    peak = max([peak] + [hwm(pid) for pid in pids])
    time.sleep(0.2)
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1], 'w').write(f'{max(peak, usage.ru_maxrss)} {usage.ru_utime + usage.ru_stime}')
sys.exit(child.returncode)
"""


def poll(folder: Path, state: Path) -> tuple[float, float, float]:
    """(first, unchanged, one added) seconds of the sensor's folder check."""
    source = LocalFolderSource(folder, state)
    time.sleep(2.1)  # folders modified in the last 2 s are always re-listed (their mtime may not have ticked yet)
    started = time.perf_counter()
    cursor = source.check_for_changes(None).cursor
    first = time.perf_counter() - started
    started = time.perf_counter()
    assert not source.check_for_changes(cursor).changed
    unchanged = time.perf_counter() - started
    (folder / "IMG_NEW.jpg").write_bytes(unique(tiny_jpeg(), 10**9))
    time.sleep(0.01)
    started = time.perf_counter()
    assert source.check_for_changes(cursor).changed
    added = time.perf_counter() - started
    return first, unchanged, added


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=[2000, 100_000])
    parser.add_argument("--poll-sizes", type=int, nargs="*", default=[1_000_000])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/facecraft-scale"))
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / "library_scale.md")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    lines = [
        "# A library of N tiny photos: first run, nothing changed, one photo added",
        "",
        f"Command: `.venv/bin/python benchmarks/library_scale.py --sizes {' '.join(map(str, args.sizes))} "
        f"--poll-sizes {' '.join(map(str, args.poll_sizes))}`. Machine: {os.cpu_count()} CPU cores, Python {platform.python_version()}; "
        f"load average before {' / '.join(f'{v:.1f}' for v in os.getloadavg())}.",
        "",
        "`facecraft materialize --select 'key:photos or key:face_crops'`, demo profile, local folder of N distinct 96 px "
        "JPEGs without faces (1,000 per sub-folder). Step times from the Dagster event log; process = the whole command "
        "(interpreter start, imports, Dagster, MLflow); process CPU = user + system seconds of the command's process "
        "(not of its face workers, which the forkserver starts; what other work on the machine does not inflate); "
        "peak = RSS of the largest process of the run.",
        "",
        "| N | run | photos step s | face_crops step s | both steps s | process s | process CPU s | peak MiB | data root MiB | load avg (1 min) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    polls = []
    for size in args.sizes:
        work = args.workdir / f"n{size}"
        shutil.rmtree(work, ignore_errors=True)
        photos, home = work / "photos", work / "home"
        started = time.perf_counter()
        build_library(photos, size)
        print(f"N={size}: library built in {time.perf_counter() - started:.0f} s", flush=True)
        runs = [("first run", materialize(home, photos)), ("nothing changed", materialize(home, photos))]
        (photos / "0000" / "IMG_ADDED.jpg").write_bytes(unique(tiny_jpeg(), 10**9 + 1))
        runs.append(("one photo added", materialize(home, photos)))
        for name, r in runs:
            row = (f"| {size:,} | {name} | {r['photos']:.2f} | {r['face_crops']:.2f} | {r['photos'] + r['face_crops']:.2f} | "
                   f"{r['process']:.1f} | {r['cpu']:.1f} | {r['peak_mib']:.0f} | {r['data_mib']:.0f} | {r['load']:.1f} |")
            print(row, flush=True)
            lines.append(row)
        polls.append((f"{size:,} in {max(1, size // PER_FOLDER)} folders", *poll(photos, work / "poll-state")))
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    for size in args.poll_sizes:
        work = args.workdir / f"poll{size}"
        shutil.rmtree(work, ignore_errors=True)
        build_library(work / "photos", size, per_folder=0)
        polls.append((f"{size:,} in one folder", *poll(work / "photos", work / "poll-state")))
        print(polls[-1], flush=True)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    lines += ["", "The new-photos sensor's folder check (`LocalFolderSource.check_for_changes`), seconds:", "",
              "| files | first poll | nothing changed | one photo added |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {first:.2f} | {same:.2f} | {added:.2f} |" for name, first, same, added in polls]
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
