"""Does the demo GAN draw a face the gallery recognises? Train on the curated demo crops, then run
the pipeline's own face path (dlib HOG on samples upscaled to 256 px, dlib-128 embedding) on them.

    python -m facecraft_pipeline.cli materialize --select '*curated_dataset'     # once
    python benchmarks/gan_demo_faces.py [--set arch=dcgan --set run.steps=600 ...] [--kind wgan_gp]

Prints the share of samples with a face found, and the share within 0.6 (dlib's same-person
distance) of the owner's centroid (the owner's training crops through the same path).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's package, not an installed one

from facecraft_pipeline.faces.probe import IdentityProbe
from facecraft_pipeline.gan import sample_images, train_gan
from facecraft_pipeline.gan.checkpoint import load_generator
from gan_real_library import RECIPES, settings_for  # the same demo-profile settings and --set parsing


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", type=Path, default=None, help="curated dataset folder (default: the newest under data/datasets)")
    parser.add_argument("--asset", default="gan_checkpoint")
    parser.add_argument("--set", action="append", default=[], help="dotted field=value (JSON values)")
    parser.add_argument("--samples", type=int, default=32)
    args = parser.parse_args()
    folder = args.dataset or max(Path("data/datasets").glob("*/manifest.json"), key=lambda p: p.stat().st_mtime).parent
    manifest = json.loads((folder / "manifest.json").read_text())
    train = [folder / r["file"] for r in manifest["images"] if r["split"] == "train"]
    settings = settings_for(next(recipe for recipe, asset in RECIPES.items() if asset == args.asset), args.set)
    print(f"settings: {settings}", flush=True)
    find = IdentityProbe().embed  # the demo's probe: HOG, ArcFace alignment, dlib-128
    owner = np.stack([v for v in find([__import__("PIL.Image", fromlist=["Image"]).open(p) for p in train]) if v is not None])
    centroid = owner.mean(0)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        result = train_gan(train, Path(tmp), settings, progress=[lambda line: print(line, flush=True)])
        seconds = time.perf_counter() - started
        generator = load_generator(result.artifact("checkpoint"))
        images = sample_images(generator, args.samples, seed=12345)
        found = [v for v in find(images) if v is not None]
        distances = np.linalg.norm(np.stack(found) - centroid, axis=1) if found else np.array([])
        Path("/tmp/gan_demo_samples.png").write_bytes(result.artifact("samples").read_bytes())
    print(f"{args.asset}: {settings.arch} {settings.resolution}px {settings.run.steps} steps, {len(train)} train crops "
          f"({len(owner)} with a face); train {seconds:.1f} s ({result.images_per_second:.1f} img/s)")
    print(f"faces found {len(found)}/{args.samples}; owner distance mean {distances.mean() if found else float('nan'):.3f}, "
          f"within 0.6: {(distances < 0.6).sum()}/{len(found)}; metrics {result.metrics}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
