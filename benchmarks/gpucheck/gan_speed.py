"""Section 3: GAN and WGAN-GP training speed against the PyTorch DCGAN tutorial loop, fp32 and bf16, 64 and 128 px.

Reuses `gan_train.py`'s tutorial loop, the project's DCGAN setting and its timer. Speed is real images
through D (or the critic) per second, so a WGAN-GP step (n_critic = 5) counts 5 batches. The tutorial loop
runs as the tutorial wrote it (fp32: its BCELoss is not autocast-safe); the project's runs are fp32 and
bf16 autocast + channels_last, each compared with that fp32 reference from the same run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from gan_train import images_per_second, project_settings, tutorial_loop
from gpucheck.report import Report, Row, guarded, peak_gib, reset_peak

SECTION = "3 GAN speed"


@dataclass(frozen=True)
class GanPlan:
    resolutions: tuple[int, ...]
    batch: int
    steps: int
    warmup: int
    width: int = 64  # ngf = ndf (the tutorial's 64)


FULL = GanPlan(resolutions=(64, 128), batch=64, steps=20, warmup=5)
QUICK = GanPlan(resolutions=(64,), batch=4, steps=1, warmup=1, width=4)


def run(report: Report, device: torch.device, quick: bool) -> None:
    plan = QUICK if quick else FULL
    for px in plan.resolutions:
        images = torch.randint(0, 256, (256, 3, px, px), dtype=torch.uint8, device=device)
        reference = guarded(report, SECTION, f"tutorial {px}", lambda: _tutorial_row(plan, images, device))
        rate = reference.value if isinstance(reference.value, float) else None
        for kind in ("dcgan", "wgan_gp"):
            for precision in ("no", "bf16"):
                guarded(report, SECTION, f"{kind} {px} {precision}", lambda: _project_row(plan, images, kind, precision, rate, device))


def _tutorial_row(plan: GanPlan, images: torch.Tensor, device: torch.device) -> Row:
    reset_peak(device)
    rate = images_per_second(tutorial_loop(images, plan.batch, device, plan.width), plan.batch, plan.steps, plan.warmup, device)
    return Row(SECTION, f"PyTorch DCGAN tutorial loop, {images.shape[-1]} px, batch {plan.batch}, width {plan.width}, fp32", rate, "img/s",
               peak_gib=peak_gib(device), note="the reference of the rows below")


def _project_row(plan: GanPlan, images: torch.Tensor, kind: str, precision: str, reference: float | None, device) -> Row:
    from facecraft_pipeline.gan import GanTrainer

    bf16 = precision == "bf16"
    settings = project_settings("dcgan", images.shape[-1], plan.batch, precision, bf16, plan.width)
    if kind == "wgan_gp":  # the project's WGAN-GP at the same widths: critic without BatchNorm, gradient penalty
        settings = dataclasses.replace(project_settings("modern", images.shape[-1], plan.batch, precision, bf16, plan.width),
                                       kind="wgan_gp")
    reset_peak(device)
    trainer = GanTrainer(images, settings, device)
    rate = images_per_second(trainer.step, trainer.images_per_step, plan.steps, plan.warmup, device)
    label = "project DCGAN setting" if kind == "dcgan" else "project WGAN-GP (n_critic 5, gradient penalty)"
    how = "bf16 autocast + channels_last" if bf16 else "fp32"
    return Row(SECTION, f"{label}, {images.shape[-1]} px, batch {plan.batch}, {how}", rate, "img/s", reference,
               "tutorial loop, fp32", peak_gib(device), f"real images through {'the critic' if kind == 'wgan_gp' else 'D'} per second")
