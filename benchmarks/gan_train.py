"""GAN training throughput: the project's trainer against the PyTorch DCGAN tutorial loop.

    python benchmarks/gan_train.py [--device cpu|cuda] [--resolutions 64 128] [--steps 5] [--batch 64]

Three loops on the same data (random uint8 faces-sized images held on the device) and device,
each one run of `--steps` timed steps after `--warmup` steps:
  tutorial   the PyTorch DCGAN tutorial loop, written out here (ngf = ndf = 64, nz = 100, BCE,
             Adam 2e-4 (0.5, 0.999); one more block per doubling above 64 px)
  dcgan      the project's GanTrainer with its DCGAN setting (arch=dcgan, BatchNorm D, same widths)
             and what the project always adds: flips, DiffAugment color+translation, EMA, label smoothing
  modern     the project's default settings at the same widths (Upsample+conv G, spectral-norm D,
             minibatch std, DiffAugment color+translation+cutout, EMA)
Prints images/s (real images through D per second) and the ratio to the tutorial loop, as Markdown.
Imports only torch and facecraft_pipeline.gan / .training (a GPU machine has no Dagster, MLflow or dlib).
On CUDA it also runs the project's settings with bf16 autocast and channels_last.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import platform
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's package, not an installed one

from facecraft_pipeline.gan.settings import GanSettings  # noqa: E402
from facecraft_pipeline.gan.train import GanTrainer  # noqa: E402
from facecraft_pipeline.training.settings import RunSettings  # noqa: E402

NZ, NGF = 100, 64  # the tutorial: ngf = ndf = 64


def tutorial_networks(resolution: int, width: int = NGF) -> tuple[nn.Module, nn.Module]:
    """The tutorial's G and D (64 px, ngf = ndf = `width`), with one extra block per doubling for larger sides."""
    extra = int(math.log2(resolution // 64))
    g: list[nn.Module] = [nn.ConvTranspose2d(NZ, width * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(width * 8), nn.ReLU(True)]
    c = width * 8
    for out in [width * 8] * extra + [width * 4, width * 2, width]:
        g += [nn.ConvTranspose2d(c, out, 4, 2, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU(True)]
        c = out
    g += [nn.ConvTranspose2d(c, 3, 4, 2, 1, bias=False), nn.Tanh()]
    d: list[nn.Module] = [nn.Conv2d(3, width, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
    c = width
    for out in [width * 2, width * 4, width * 8] + [width * 8] * extra:
        d += [nn.Conv2d(c, out, 4, 2, 1, bias=False), nn.BatchNorm2d(out), nn.LeakyReLU(0.2, inplace=True)]
        c = out
    d += [nn.Conv2d(c, 1, 4, 1, 0, bias=False), nn.Sigmoid()]
    return nn.Sequential(*g), nn.Sequential(*d)


def weights_init(m: nn.Module) -> None:
    if "Conv" in type(m).__name__:
        nn.init.normal_(m.weight.data, 0.0, 0.02)
    elif "BatchNorm" in type(m).__name__:
        nn.init.normal_(m.weight.data, 1.0, 0.02)
        nn.init.constant_(m.bias.data, 0)


def tutorial_loop(images: torch.Tensor, batch: int, device: torch.device, width: int = NGF):
    """One step of the tutorial's training loop per call (real batch, fake batch, G step)."""
    netG, netD = tutorial_networks(images.shape[-1], width)
    netG, netD = netG.to(device).apply(weights_init), netD.to(device).apply(weights_init)
    criterion = nn.BCELoss()
    optD = torch.optim.Adam(netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optG = torch.optim.Adam(netG.parameters(), lr=2e-4, betas=(0.5, 0.999))

    def step() -> None:
        index = torch.randint(len(images), (batch,), device=device)
        real = images[index].float() / 127.5 - 1
        netD.zero_grad()
        label = torch.full((batch,), 1.0, device=device)
        errD_real = criterion(netD(real).view(-1), label)
        errD_real.backward()
        noise = torch.randn(batch, NZ, 1, 1, device=device)
        fake = netG(noise)
        label.fill_(0.0)
        errD_fake = criterion(netD(fake.detach()).view(-1), label)
        errD_fake.backward()
        optD.step()
        netG.zero_grad()
        label.fill_(1.0)
        errG = criterion(netD(fake).view(-1), label)
        errG.backward()
        optG.step()

    return step


def project_settings(name: str, resolution: int, batch: int, precision: str = "no", channels_last: bool = False,
                     width: int = NGF) -> GanSettings:
    base = GanSettings(resolution=resolution, batch_size=batch, latent_dim=NZ, base_channels=width, lr_d=2e-4,
                       channels_last=channels_last, run=RunSettings(mixed_precision=precision))
    if name == "dcgan":
        return dataclasses.replace(base, arch="dcgan", spectral_norm=False, minibatch_std=False, diffaugment="color,translation")
    return base


def images_per_second(step, batch: int, steps: int, warmup: int, device: torch.device) -> float:
    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--resolutions", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--images", type=int, default=256, help="distinct images in the in-memory set")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    print(f"# GAN training throughput ({device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"Python {platform.python_version()}), batch {args.batch}, {args.steps} timed steps after {args.warmup}\n")
    print("| px | loop | img/s | vs tutorial |\n|---|---|---|---|")
    for resolution in args.resolutions:
        images = torch.randint(0, 256, (args.images, 3, resolution, resolution), dtype=torch.uint8, device=device)
        reference = images_per_second(tutorial_loop(images, args.batch, device), args.batch, args.steps, args.warmup, device)
        print(f"| {resolution} | tutorial DCGAN loop | {reference:.1f} | 1.00x |", flush=True)
        runs = [("dcgan", "no", False), ("modern", "no", False)]
        if device.type == "cuda":
            runs += [("dcgan", "bf16", True), ("modern", "bf16", True)]
        for name, precision, cl in runs:
            trainer = GanTrainer(images, project_settings(name, resolution, args.batch, precision, cl), device)
            rate = images_per_second(trainer.step, args.batch, args.steps, args.warmup, device)
            label = f"project {name}" + (" bf16 + channels_last" if precision != "no" else "")
            print(f"| {resolution} | {label} | {rate:.1f} | {rate / reference:.2f}x |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
