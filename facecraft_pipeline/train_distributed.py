"""Multi-GPU (or multi-process) training under torchrun: the same trainers, run folders and keys.

    torchrun --nproc_per_node 4 -m facecraft_pipeline.train_distributed gan \\
        --images data/datasets/<digest>/train --root data/models/gan_checkpoint --settings gan.json

`--settings` is a JSON object of the trainer's settings (nested like the launchpad: {"run": {"steps":
20000}, ...}; the `settings` of a run.json works). `batch_size` is the global batch: every process
trains on its slice, gradients are averaged, only rank 0 writes (see training/distributed.py). The
run key does not depend on the number of processes, so materializing the asset afterwards with the
same dataset and settings finds this finished run and re-uses it, and a run started on 4 GPUs can be
extended on 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from facecraft_pipeline.settings import from_dict

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="facecraft_pipeline.train_distributed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trainer", choices=("gan", "wgan_gp", "lora"))
    parser.add_argument("--images", type=Path, required=True, help="folder of training images (e.g. a curated dataset's train/)")
    parser.add_argument("--root", type=Path, required=True, help="where run folders go (e.g. data/models/gan_checkpoint)")
    parser.add_argument("--settings", default="{}", help="JSON object or a .json file of the trainer's settings")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--cache-dir", type=Path, default=None, help="LoRA: base models and class images")
    args = parser.parse_args(argv)
    raw = Path(args.settings).read_text() if args.settings.endswith(".json") else args.settings
    values = json.loads(raw)
    images = sorted(p for p in args.images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise SystemExit(f"no training images in {args.images}")
    if args.trainer == "lora":
        from facecraft_pipeline.lora import LoraSettings, train_lora

        result = train_lora(images, args.root, from_dict(LoraSettings, values), args.device, args.cache_dir)
    else:
        from facecraft_pipeline.gan import GanSettings, train_gan

        settings = from_dict(GanSettings, {**values, "kind": "dcgan" if args.trainer == "gan" else "wgan_gp"})
        result = train_gan(images, args.root, settings, args.device)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        if torch.distributed.get_rank() != 0:
            return 0
    print(result.folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
