"""Benchmark: dlib's face ResNet, dlib's own forward pass against the PyTorch port, faces/s and agreement.

    .venv/bin/python benchmarks/embedding_engines.py [--faces 256] [--batch 32] [--results benchmarks/results/embedding_engines.md]

Both engines embed the same 150 px chips (dlib's own chips of the sample portraits, varied); the
reference is `dlib.face_recognition_model_v1.compute_face_descriptor` (dlib-bin: one thread, no
BLAS), the project's path is `faces/dlib_resnet.py` on every device this machine has (CPU with
PyTorch's threads and with one thread; cuda/mps when present). Reported: faces/s (median of 3),
the ratio to dlib in the same run, and the largest component difference from dlib's vectors.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import dlib
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from facecraft_pipeline.faces.dlib_resnet import chips_to_tensor, load_dlib_resnet  # noqa: E402
from facecraft_pipeline.faces.embed import DlibEmbedder  # noqa: E402
from facecraft_pipeline.faces.model_files import RESNET_EMBEDDING, dlib_model_path  # noqa: E402
from facecraft_pipeline_tests.faces.identity_fixtures import VARIATIONS, identity_crops  # noqa: E402


def chips(count: int) -> list[np.ndarray]:
    """`count` chips: dlib's chips of both portraits in every variation, each with its own faint noise."""
    embedder = DlibEmbedder(engine="dlib")
    crops = identity_crops(112)
    base = [embedder.chip(crops[person][v]).astype(np.int16) for person in crops for v in VARIATIONS]
    rng = np.random.default_rng(0)
    return [np.clip(base[i % len(base)] + rng.integers(-2, 3, base[0].shape), 0, 255).astype(np.uint8) for i in range(count)]


def median_time(function, repeat: int = 3) -> float:  # noqa: ANN001
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faces", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32, help="chips per forward pass (EmbeddingCache's default)")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / "embedding_engines.md")
    args = parser.parse_args()
    data = chips(args.faces)
    network = dlib.face_recognition_model_v1(str(dlib_model_path(RESNET_EMBEDDING)))
    reference_s = median_time(lambda: network.compute_face_descriptor(data, 0))
    reference = np.asarray([np.asarray(v) for v in network.compute_face_descriptor(data, 0)], dtype=np.float32)

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) + (["mps"] if torch.backends.mps.is_available() else [])
    threads = torch.get_num_threads()
    rows = [("dlib's own forward pass (dlib-bin, one thread): the reference", "cpu", reference_s, 0.0)]
    for device in devices:
        model = load_dlib_resnet(str(dlib_model_path(RESNET_EMBEDDING)), device)
        for label, count in ([(f"{threads} threads", threads), ("1 thread", 1)] if device == "cpu" else [("", threads)]):
            torch.set_num_threads(count)

            def run() -> np.ndarray:
                out = []
                with torch.inference_mode(), torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=False, allow_tf32=False):
                    for start in range(0, len(data), args.batch):
                        out.append(model(chips_to_tensor(data[start : start + args.batch], device)).cpu().numpy())
                if device == "cuda":
                    torch.cuda.synchronize()
                return np.concatenate(out)

            vectors = run()  # warm-up (and the vectors compared)
            seconds = median_time(run)
            name = torch.cuda.get_device_name() if device == "cuda" else platform.processor() or "CPU"
            rows.append((f"PyTorch port on {device} ({name}{', ' + label if label else ''}), batches of {args.batch}", device, seconds, float(np.abs(vectors - reference).max())))
        torch.set_num_threads(threads)

    lines = [
        "# dlib's face ResNet: dlib's forward pass vs the PyTorch port (`faces/dlib_resnet.py`)",
        "",
        f"Command: `.venv/bin/python benchmarks/embedding_engines.py --faces {args.faces} --batch {args.batch}`",
        "",
        f"Machine: {os.cpu_count()} CPU cores, devices {devices}; torch {torch.__version__}, dlib {dlib.__version__} "
        f"(CUDA={dlib.DLIB_USE_CUDA}, BLAS={dlib.DLIB_USE_BLAS}), Python {platform.python_version()}; load average "
        f"{'/'.join(f'{v:.1f}' for v in os.getloadavg())} at the end.",
        "",
        f"| engine ({args.faces} chips of 150 px, median of 3) | s | faces/s | vs dlib | largest difference from dlib's vectors |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [f"| {name} | {s:.2f} | {args.faces / s:.0f} | {reference_s / s:.1f}x | {diff:.1e} |" for name, _, s, diff in rows]
    lines += ["", "Vectors are dlib's 128-d descriptors (norms ~1.3); dlib's same-person rule is a Euclidean distance < 0.6.", ""]
    report = "\n".join(lines)
    print(report)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(report)


if __name__ == "__main__":
    main()
