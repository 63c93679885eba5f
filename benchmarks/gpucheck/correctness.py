"""Section 1: the CUDA paths compute what the CPU-tested ones do.

- one GAN, one WGAN-GP and one SD LoRA run in bf16 end with finite losses (what a run in bf16 on a GPU does);
- a run interrupted after its first checkpoint and resumed ends with the same weights, bit for bit, as an
  uninterrupted one (deterministic algorithms on: `torch.use_deterministic_algorithms`, cuDNN benchmark off);
- the compiled GAN step (`GanSettings.compile`) gives the eager step's losses within a tolerance, and on
  the full run the compiled LoRA step (`LoraSettings.compile`) the eager run's final loss.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from gan_train import project_settings
from gpucheck.report import FAIL, PASS, SKIPPED, Report, Row, guarded
from lora_train import make_images

SECTION = "1 correctness"
COMPILE_RTOL = 2e-2  # inductor's kernels and eager differ in reduction order (TF32 on CUDA): a few steps stay within this


@dataclass(frozen=True)
class CorrectnessPlan:
    gan_px: int
    gan_batch: int
    gan_width: int  # base_channels
    lora_px: int
    steps: int = 6  # checkpoint at half, interrupted one step later, resumed to the end
    compile: bool = True  # inductor compiles in seconds on a GPU machine, ~100 s even for the tiny GAN on a 2-core CPU


FULL = CorrectnessPlan(gan_px=64, gan_batch=32, gan_width=64, lora_px=64)
QUICK = CorrectnessPlan(gan_px=16, gan_batch=8, gan_width=8, lora_px=32, steps=4, compile=False)


def run(report: Report, device: torch.device, quick: bool, work: Path) -> None:
    plan = QUICK if quick else FULL
    gan_paths = make_images(work / "gan-images", max(16, plan.gan_batch), plan.gan_px)
    lora_paths = make_images(work / "lora-images", 4, plan.lora_px)
    for kind in ("dcgan", "wgan_gp"):
        guarded(report, SECTION, f"{kind} bf16 finite", lambda: _gan_finite(plan, kind, gan_paths, device, work))
    guarded(report, SECTION, "SD LoRA bf16 finite", lambda: _lora_finite(plan, lora_paths, device, work))
    for kind in ("dcgan", "wgan_gp"):
        guarded(report, SECTION, f"{kind} resume", lambda: _gan_resume(plan, kind, gan_paths, device, work))
    guarded(report, SECTION, "SD LoRA resume", lambda: _lora_resume(plan, lora_paths, device, work))
    if not plan.compile:
        report.add(Row(SECTION, "torch.compile vs eager (GAN, SD LoRA)", SKIPPED, note="not in --quick: inductor needs ~100 s on a 2-core CPU"))
        return
    guarded(report, SECTION, "GAN compiled vs eager", lambda: _gan_compiled(plan, device))
    guarded(report, SECTION, "SD LoRA compiled vs eager", lambda: _lora_compiled(plan, lora_paths, device, work))


def gan_settings(plan: CorrectnessPlan, kind: str, precision: str = "bf16", compile: bool = False):
    from facecraft_pipeline.training import RunSettings

    base = project_settings("modern", plan.gan_px, plan.gan_batch, precision, channels_last=True)
    return dataclasses.replace(base, kind=kind, base_channels=plan.gan_width, compile=compile, sample_count=4,
                               run=RunSettings(steps=plan.steps, log_every=1, checkpoint_every=plan.steps // 2, sample_every=0,
                                               mixed_precision=precision))


def lora_settings(plan: CorrectnessPlan, compile: bool = False):
    from facecraft_pipeline.lora import LoraSettings
    from facecraft_pipeline.training import RunSettings

    return LoraSettings(base_model="tiny", resolution=plan.lora_px, rank=4, alpha=4.0, batch_size=2, validation_prompts=(),
                        compile=compile, run=RunSettings(steps=plan.steps, log_every=1, checkpoint_every=plan.steps // 2,
                                                         mixed_precision="bf16"))


def _finite_row(name: str, metrics: dict[str, float], what: str) -> Row:
    finite = bool(metrics) and all(math.isfinite(v) for v in metrics.values())
    shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items())
    return Row(SECTION, name, PASS if finite else FAIL, note=f"{what}; last losses: {shown}")


def _gan_finite(plan: CorrectnessPlan, kind: str, paths, device, work: Path) -> Row:
    from facecraft_pipeline.gan import train_gan

    result = train_gan(paths, work / f"finite-{kind}", gan_settings(plan, kind), device)
    return _finite_row(f"{kind} training in bf16 + channels_last: losses finite", result.metrics,
                       f"{plan.steps} steps at {plan.gan_px} px, batch {plan.gan_batch}")


def _lora_finite(plan: CorrectnessPlan, paths, device, work: Path) -> Row:
    from facecraft_pipeline.lora import train_lora

    result = train_lora(paths, work / "finite-lora", lora_settings(plan), device, work / "cache")
    return _finite_row("SD LoRA training in bf16: loss finite", result.metrics, f"tiny SD, {plan.steps} steps at {plan.lora_px} px")


@contextlib.contextmanager
def deterministic() -> Iterator[None]:
    """Deterministic kernels only (an op without one raises); needs CUBLAS_WORKSPACE_CONFIG set before CUDA starts."""
    before, benchmark = torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)
        torch.backends.cudnn.benchmark = benchmark


def _interrupt_at(step: int):
    def stop(line) -> None:
        if line.step == step:
            raise KeyboardInterrupt

    return stop


def _resumed_and_straight(train, steps: int):
    """(resumed result, uninterrupted result): `train(root_name, progress)` runs one training."""
    with deterministic():
        straight = train("straight", [])
        with contextlib.suppress(KeyboardInterrupt):
            train("interrupted", [_interrupt_at(steps // 2 + 1)])
        resumed = train("interrupted", [])
    return resumed, straight


def _max_difference(a, b) -> float:
    """Largest absolute difference between two nested structures of tensors (inf if their layout differs)."""
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        if a.shape != b.shape or a.dtype != b.dtype:
            return math.inf
        return 0.0 if torch.equal(a, b) else (a.double() - b.double()).abs().max().item()
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return math.inf
        return max((_max_difference(a[k], b[k]) for k in a), default=0.0)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return math.inf
        return max((_max_difference(x, y) for x, y in zip(a, b)), default=0.0)
    return 0.0 if a == b else math.inf


def _resume_row(name: str, resumed, straight, compared: str, difference: float) -> Row:
    ok = difference == 0.0 and resumed.resumed_from > 0 and resumed.steps == straight.steps
    return Row(SECTION, name, PASS if ok else FAIL,
               note=f"resumed from step {resumed.resumed_from} to {resumed.steps}; {compared}: max abs difference {difference:.3g}")


def _gan_resume(plan: CorrectnessPlan, kind: str, paths, device, work: Path) -> Row:
    from facecraft_pipeline.gan import train_gan

    settings = gan_settings(plan, kind)
    resumed, straight = _resumed_and_straight(
        lambda root, progress: train_gan(paths, work / f"resume-{kind}-{root}", settings, device, progress), plan.steps)
    a, b = (torch.load(r.artifact("checkpoint"), weights_only=True, map_location="cpu") for r in (resumed, straight))
    difference = _max_difference({k: a[k] for k in ("G", "G_ema", "D", "opt_g", "opt_d")},
                                 {k: b[k] for k in ("G", "G_ema", "D", "opt_g", "opt_d")})
    return _resume_row(f"{kind} bf16, interrupted and resumed = uninterrupted (deterministic)", resumed, straight,
                       "G, EMA G, D and both optimizers", difference)


def _lora_resume(plan: CorrectnessPlan, paths, device, work: Path) -> Row:
    from safetensors.torch import load_file

    from facecraft_pipeline.lora import train_lora

    settings = lora_settings(plan)
    resumed, straight = _resumed_and_straight(
        lambda root, progress: train_lora(paths, work / f"resume-lora-{root}", settings, device, work / "cache", progress),
        plan.steps)
    difference = _max_difference(load_file(resumed.artifact("weights")), load_file(straight.artifact("weights")))
    return _resume_row("SD LoRA bf16, interrupted and resumed = uninterrupted (deterministic)", resumed, straight,
                       "saved LoRA weights", difference)


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs() / b.abs().clamp_min(1e-6)).max().item()


def _gan_compiled(plan: CorrectnessPlan, device) -> Row:
    from facecraft_pipeline.gan import GanTrainer

    images = torch.randint(0, 256, (64, 3, plan.gan_px, plan.gan_px), dtype=torch.uint8)
    losses = []
    for compile in (False, True):
        torch.manual_seed(0)
        trainer = GanTrainer(images, gan_settings(plan, "dcgan", precision="no", compile=compile), device)
        losses.append(torch.stack([trainer.step() for _ in range(3)]).float().cpu())
    difference = _relative(losses[1], losses[0])
    return Row(SECTION, "GAN step, torch.compile vs eager (fp32, 3 steps): same losses", PASS if difference <= COMPILE_RTOL else FAIL,
               note=f"max relative difference {difference:.2e} (tolerance {COMPILE_RTOL:g})")


def _lora_compiled(plan: CorrectnessPlan, paths, device, work: Path) -> Row:
    from facecraft_pipeline.lora import train_lora

    losses = [train_lora(paths, work / f"compile-{flag}", lora_settings(plan, compile=flag), device, work / "cache").metrics["loss"]
              for flag in (False, True)]
    difference = abs(losses[1] - losses[0]) / max(abs(losses[0]), 1e-6)
    return Row(SECTION, "SD LoRA, torch.compile vs eager (bf16): same final loss", PASS if difference <= COMPILE_RTOL else FAIL,
               note=f"eager {losses[0]:.5g}, compiled {losses[1]:.5g}: relative difference {difference:.2e}")
