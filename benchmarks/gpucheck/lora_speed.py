"""Section 2: LoRA training speed and peak memory at real shapes, random weights, the project against diffusers' examples.

SD-1.5 (512 px, batch 1/4/16) and SDXL (1024 px, batch 1/4): `lora_train.project_loop` (the project's
`train_lora`, cached latents and captions, bf16) against the example loop (fp16 weights, VAE every step)
on fresh random pipelines built on the GPU. FLUX.1 (512 px, batch 1): the example loop in bf16, and on an
NF4 transformer when bitsandbytes is installed (the project has no Flux trainer to compare on this branch).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from gpucheck.build import build_flux, build_sdxl_pipeline, building_on, config_folder, to_nf4
from gpucheck.example_loops import flux_example_loop, sdxl_example_loop
from gpucheck.report import SKIPPED, Report, Row, guarded, peak_gib, reset_peak
from lora_train import DTYPES, build_pipeline, example_loop, make_images, project_loop

SECTION = "2 LoRA speed"


@dataclass(frozen=True)
class LoraPlan:
    sd_shape: str
    sd_px: int
    sd_batches: tuple[int, ...]
    sdxl_shape: str
    sdxl_px: int
    sdxl_batches: tuple[int, ...]
    flux_shape: str
    flux_px: int
    steps: int  # timed steps, a multiple of warmup (the project trainer's speed is read from its logging windows)
    warmup: int
    example_precision: str  # diffusers' examples: fp16 weights for SD / SDXL
    images: int  # distinct training images (latents cached by the project trainer)


FULL = LoraPlan("sd15", 512, (1, 4, 16), "sdxl", 1024, (1, 4), "flux", 512, steps=10, warmup=5, example_precision="fp16", images=16)
QUICK = LoraPlan("narrow", 64, (1,), "narrow", 64, (1,), "tiny", 64, steps=1, warmup=1, example_precision="bf16", images=2)
PRECISION = "bf16"  # the project trainer's


def run(report: Report, device: torch.device, quick: bool, work: Path) -> None:
    plan = QUICK if quick else FULL
    for batch in plan.sd_batches:
        guarded(report, SECTION, f"SD-1.5 batch {batch}", lambda: _sd_row(plan, "sd", batch, device, work))
    for batch in plan.sdxl_batches:
        guarded(report, SECTION, f"SDXL batch {batch}", lambda: _sd_row(plan, "sdxl", batch, device, work))
    bf16 = guarded(report, SECTION, "FLUX.1 bf16", lambda: _flux_row(plan, device, work, quantized=False))
    guarded(report, SECTION, "FLUX.1 NF4", lambda: _flux_row(plan, device, work, quantized=True, bf16=bf16))


def _sd_row(plan: LoraPlan, family: str, batch: int, device: torch.device, work: Path) -> Row:
    xl = family == "sdxl"
    shape, px = (plan.sdxl_shape, plan.sdxl_px) if xl else (plan.sd_shape, plan.sd_px)
    paths = make_images(work / f"images-{px}", plan.images, px)

    def pipeline(precision: str):
        with building_on(device, DTYPES[precision]):
            return build_sdxl_pipeline(shape, work) if xl else build_pipeline(shape, work)

    reset_peak(device)
    if xl:
        from facecraft_pipeline.training.images import load_images, to_float

        seconds = sdxl_example_loop(pipeline(plan.example_precision), to_float(load_images(paths, px)), batch, plan.steps, plan.warmup,
                                    DTYPES[plan.example_precision], device)
        example = {"s_per_step": seconds, "img_per_s": batch / seconds}
    else:
        example = example_loop(None, paths, px, batch, plan.steps, plan.warmup, plan.example_precision, device,
                               pipe=pipeline(plan.example_precision))
    example_peak = peak_gib(device)
    reset_peak(device)
    from facecraft_pipeline.lora import resolve_base_model

    pipe = pipeline(PRECISION)
    base = resolve_base_model(config_folder(pipe, work / f"{family}-config"), work / "cache")
    project = project_loop(base, paths, px, batch, plan.steps, plan.warmup, PRECISION, device, work, False, False, pipe=pipe)
    name = f"{'SDXL' if xl else 'SD-1.5'} LoRA r8 {px} px batch {batch}: project trainer ({PRECISION}, cached latents)"
    return Row(SECTION, name, project["img_per_s"], "img/s", example["img_per_s"], f"diffusers example, {plan.example_precision}",
               peak_gib(device), f"{shape} shapes; s/step project {project['s_per_step']:.3f}, example {example['s_per_step']:.3f}; "
               f"example peak {_gib(example_peak)} GiB")


def _flux_row(plan: LoraPlan, device: torch.device, work: Path, quantized: bool, bf16: Row | None = None) -> Row:
    name = f"FLUX.1 LoRA r8 {plan.flux_px} px batch 1: diffusers example loop, {'NF4' if quantized else 'bf16'} transformer"
    if quantized:
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            return Row(SECTION, name, SKIPPED, note="bitsandbytes is not installed (a CUDA binary, not in gpu_requirements.txt)")
    from facecraft_pipeline.training.images import load_images, to_float

    pixels = to_float(load_images(make_images(work / f"images-{plan.flux_px}", plan.images, plan.flux_px), plan.flux_px))
    reset_peak(device)
    with building_on(device, torch.bfloat16):
        transformer, vae, tokens = build_flux(plan.flux_shape)
    params = sum(p.numel() for p in transformer.parameters())
    replaced = to_nf4(transformer, torch.bfloat16) if quantized else 0
    seconds = flux_example_loop(transformer, vae, tokens, pixels, 1, plan.steps, plan.warmup, torch.bfloat16, device)
    reference = bf16.value if bf16 is not None and isinstance(bf16.value, float) else None
    note = (f"{plan.flux_shape} shapes, {params / 1e9:.2f} B transformer params, {tokens} text tokens (random embeddings); "
            f"{seconds:.3f} s/step; the project has no Flux trainer on this branch")
    if quantized:
        note += f"; {replaced} Linear layers in NF4"
    return Row(SECTION, name, 1 / seconds, "img/s", reference, "bf16 example" if reference else "", peak_gib(device), note)


def _gib(value: float | None) -> str:
    return "n/a (CPU)" if value is None else f"{value:.2f}"
