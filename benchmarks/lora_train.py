"""The project's LoRA trainer against the plain diffusers-example loop, same model and batch, in one run.

    python benchmarks/lora_train.py                      # CPU: SD-1.5-shaped, narrowed (same blocks, fewer channels), 256 px
    python benchmarks/lora_train.py --device cuda        # GPU: real SD-1.5 shapes (860 M UNet), 512 px, batch 1/4/16
    python benchmarks/lora_train.py --device cuda --compile --low-memory
    python benchmarks/lora_train.py --family flux        # CPU: FLUX.1-shaped, narrowed (all 19 + 38 blocks), 256 px, rank 16
    python benchmarks/lora_train.py --family flux --device cuda --quantize none nf4 float8   # real FLUX.1 shapes, 512 px

The example loop is diffusers' train_dreambooth_lora.py recipe: frozen weights in fp16 (bf16 on a
CPU, or fp32 with --precision no), fp32 LoRA params on to_q/k/v/out.0, autocast, VAE encode and
text encoder every step, AdamW, a loss.item() per step (its logging). The project's trainer runs
through `lora.train_lora` (the real run protocol: run folder, stats, checkpoint at the end) with
cached latents and caption embeddings, fused AdamW on CUDA, no host sync per step. Weights are
random (no downloads): speed and memory only.

With `--family flux` the example loop is diffusers' train_dreambooth_lora_flux.py recipe instead:
prompt embeddings computed once (as the example does for one instance prompt), the VAE every step,
uniform timesteps through the scheduler's sigma table, 2x2 packing, guidance 3.5 embedded, LoRA on
the attention and MLP of every block (as the project's default), rank 16, AdamW, `loss.item()`. Imports only torch/diffusers/peft/transformers and
facecraft_pipeline.lora / training, so it runs where Dagster, MLflow and dlib are not installed.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from facecraft_pipeline.lora import Example, LoraSettings, load_pipeline, resolve_base_model, train_lora  # noqa: E402
from facecraft_pipeline.lora.tiny_sd import _byte_tokenizer  # noqa: E402
from facecraft_pipeline.training import RunSettings  # noqa: E402

FLUX_SHAPES = {  # FLUX.1's transformer / VAE / CLIP-L / T5-XXL; "flux-narrow" keeps every block and layer, fewer channels
    "flux1": {"heads": 24, "head_dim": 128, "rope": (16, 56, 56), "joint": 4096, "pooled": 768, "vae": (128, 256, 512, 512),
              "clip": (768, 12, 12, 3072), "t5": (4096, 24, 64, 10240)},
    "flux-narrow": {"heads": 2, "head_dim": 64, "rope": (8, 28, 28), "joint": 128, "pooled": 64, "vae": (32, 32, 64, 64),
                    "clip": (64, 2, 2, 128), "t5": (128, 2, 2, 256)},
}
SHAPES = {  # SD-1.5's UNet / VAE / CLIP-L shapes; "narrow" keeps every block and layer with ~10x fewer channels (CPU)
    "sd15": {"unet": (320, 640, 1280, 1280), "heads": 8, "cross": 768, "vae": (128, 256, 512, 512), "te": (768, 12, 12, 3072)},
    "narrow": {"unet": (32, 32, 64, 64), "heads": 8, "cross": 128, "vae": (32, 32, 64, 64), "te": (128, 2, 4, 256)},
}
PROJECT = "project trainer (cached latents + captions)"
DTYPES = {"no": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def build_base(folder: Path, shape: str) -> Path:
    """An SD-1.5-shaped StableDiffusionPipeline with random weights, saved so it loads like a real one."""
    torch.manual_seed(0)
    build_pipeline(shape, folder.parent).save_pretrained(folder, safe_serialization=True)
    return folder


def build_pipeline(shape: str, tokenizer_dir: Path):
    """The SD-1.5-shaped pipeline of `shape` with random weights, built where torch's default device and dtype say."""
    from diffusers import AutoencoderKL, DDPMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    s = SHAPES[shape]
    unet = UNet2DConditionModel(
        sample_size=64, block_out_channels=s["unet"], layers_per_block=2, attention_head_dim=s["heads"],
        cross_attention_dim=s["cross"], norm_num_groups=32 if min(s["unet"]) >= 32 else 8,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",), up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3)
    vae = AutoencoderKL(block_out_channels=s["vae"], layers_per_block=2, latent_channels=4, norm_num_groups=32,
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
    hidden, layers, heads, inner = s["te"]
    text = CLIPTextModel(CLIPTextConfig(vocab_size=514, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                                        intermediate_size=inner, projection_dim=hidden, max_position_embeddings=77,
                                        bos_token_id=512, eos_token_id=513, pad_token_id=513))
    scheduler = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000)
    return StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=_byte_tokenizer(tokenizer_dir), unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False)


def build_flux_base(folder: Path, shape: str) -> Path:
    """A FLUX.1-shaped FluxPipeline (19 double + 38 single blocks) with random weights, saved so it loads like a real one."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    s = FLUX_SHAPES[shape]
    torch.manual_seed(0)
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=64, num_layers=19, num_single_layers=38, attention_head_dim=s["head_dim"],
        num_attention_heads=s["heads"], joint_attention_dim=s["joint"], pooled_projection_dim=s["pooled"],
        axes_dims_rope=s["rope"], guidance_embeds=True)
    vae = AutoencoderKL(in_channels=3, out_channels=3, block_out_channels=s["vae"], layers_per_block=2, latent_channels=16,
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=32,
                        use_quant_conv=False, use_post_quant_conv=False, scaling_factor=0.3611, shift_factor=0.1159)
    hidden, layers, heads, inner = s["clip"]
    clip = CLIPTextModel(CLIPTextConfig(vocab_size=514, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                                        intermediate_size=inner, projection_dim=hidden, max_position_embeddings=77,
                                        bos_token_id=512, eos_token_id=513, pad_token_id=513))
    d_model, layers, heads, d_ff = s["t5"]
    t5 = T5EncoderModel(T5Config(vocab_size=514, d_model=d_model, d_kv=64, d_ff=d_ff, num_layers=layers, num_heads=heads,
                                 pad_token_id=513, eos_token_id=513, decoder_start_token_id=0))
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=True, base_shift=0.5,
                                                max_shift=1.15, base_image_seq_len=256, max_image_seq_len=4096)
    tokenizer = _byte_tokenizer(folder.parent)
    FluxPipeline(scheduler=scheduler, vae=vae, text_encoder=clip, tokenizer=tokenizer, text_encoder_2=t5, tokenizer_2=tokenizer,
                 transformer=transformer).save_pretrained(folder, safe_serialization=True)
    return folder


def make_images(folder: Path, count: int, resolution: int) -> list[Path]:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        base = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)  # smooth random colour fields (no download)
        image = Image.fromarray(base).resize((resolution, resolution), Image.Resampling.BICUBIC)
        paths.append(folder / f"img{i:03d}.png")
        image.save(paths[-1])
    return paths


def example_update(loss, params, optimizer) -> None:
    """The diffusers examples' update: backward, clip to 1.0, step, zero, and the loss logged every step (a host sync)."""
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()
    optimizer.zero_grad()
    loss.detach().item()


def example_loop(base, paths, resolution, batch, steps, warmup, precision, device, pipe=None) -> dict:
    """diffusers' train_dreambooth_lora.py inner loop, nothing else (on `pipe` when given, else `base` loaded)."""
    from diffusers import DDPMScheduler
    from diffusers.training_utils import cast_training_params
    from peft import LoraConfig

    weight_dtype = DTYPES[precision]
    pipe = (pipe if pipe is not None else load_pipeline(base, device, weight_dtype)).to(device, weight_dtype)
    unet, vae, text, tokenizer = pipe.unet, pipe.vae, pipe.text_encoder, pipe.tokenizer
    for model in (unet, vae, text):
        model.requires_grad_(False)
    unet.add_adapter(LoraConfig(r=8, lora_alpha=8, init_lora_weights="gaussian", target_modules=["to_k", "to_q", "to_v", "to_out.0"]))
    cast_training_params(unet, dtype=torch.float32)
    params = [p for p in unet.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    from facecraft_pipeline.training.images import load_images, to_float

    pixels = to_float(load_images(paths, resolution))
    ids = tokenizer(["photo of sks person"] * batch, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    times = []
    for step in range(warmup + steps):
        started = time.perf_counter()
        chosen = pixels[torch.randint(0, len(pixels), (batch,))].to(device, weight_dtype)
        with torch.autocast(device.type, dtype=weight_dtype, enabled=weight_dtype != torch.float32):
            latents = vae.encode(chosen).latent_dist.sample() * vae.config.scaling_factor
            noise = torch.randn_like(latents)
            timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (batch,), device=device)
            noisy = noise_scheduler.add_noise(latents, noise, timesteps)
            hidden = text(ids.to(device), return_dict=False)[0]
            prediction = unet(noisy, timesteps, hidden, return_dict=False)[0]
        loss = F.mse_loss(prediction.float(), noise.float(), reduction="mean")
        example_update(loss, params, optimizer)
        if step >= warmup:
            times.append(time.perf_counter() - started)
    del pipe, optimizer
    return {"s_per_step": statistics.median(times), "img_per_s": batch / statistics.median(times)}


def example_flux_loop(base, paths, resolution, batch, steps, warmup, precision, device, rank=16, sequence=128) -> dict:
    """diffusers' train_dreambooth_lora_flux.py inner loop, nothing else."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline
    from diffusers.training_utils import cast_training_params, compute_density_for_timestep_sampling, compute_loss_weighting_for_sd3
    from peft import LoraConfig

    from facecraft_pipeline.lora.families import FLUX_TARGETS
    from facecraft_pipeline.training.images import load_images, to_float

    weight_dtype = DTYPES[precision]
    pipe = load_pipeline(base, device, weight_dtype)
    transformer, vae = pipe.transformer, pipe.vae
    for model in (transformer, vae, pipe.text_encoder, pipe.text_encoder_2):
        model.requires_grad_(False)
    with torch.no_grad():  # the example encodes its one instance prompt once and frees the text encoders
        prompt_embeds, pooled, text_ids = pipe.encode_prompt(["photo of sks person"] * batch, None, device=device,
                                                             max_sequence_length=sequence)
    transformer.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian", target_modules=FLUX_TARGETS))
    cast_training_params(transformer, dtype=torch.float32)
    params = [p for p in transformer.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    noise_scheduler = FlowMatchEulerDiscreteScheduler.from_config(pipe.scheduler.config)
    schedule_timesteps, schedule_sigmas = noise_scheduler.timesteps.to(device), noise_scheduler.sigmas.to(device)
    pixels = to_float(load_images(paths, resolution))
    times = []
    for step in range(warmup + steps):
        started = time.perf_counter()
        chosen = pixels[torch.randint(0, len(pixels), (batch,))].to(device, weight_dtype)
        with torch.autocast(device.type, dtype=weight_dtype, enabled=weight_dtype != torch.float32):
            latents = (vae.encode(chosen).latent_dist.sample() - vae.config.shift_factor) * vae.config.scaling_factor
            latents = latents.to(weight_dtype)
            image_ids = FluxPipeline._prepare_latent_image_ids(batch, latents.shape[2] // 2, latents.shape[3] // 2, device, weight_dtype)
            noise = torch.randn_like(latents)
            u = compute_density_for_timestep_sampling(weighting_scheme="none", batch_size=batch, logit_mean=0.0, logit_std=1.0,
                                                      mode_scale=1.29)
            timesteps = schedule_timesteps[(u * noise_scheduler.config.num_train_timesteps).long()].to(device)
            step_indices = [(schedule_timesteps == t).nonzero().item() for t in timesteps]
            sigmas = schedule_sigmas[step_indices].flatten().view(-1, 1, 1, 1).to(weight_dtype)
            noisy = (1.0 - sigmas) * latents + sigmas * noise
            packed = FluxPipeline._pack_latents(noisy, batch, latents.shape[1], latents.shape[2], latents.shape[3])
            guidance = torch.full((batch,), 3.5, device=device)
            prediction = transformer(hidden_states=packed, timestep=timesteps / 1000, guidance=guidance,
                                     pooled_projections=pooled, encoder_hidden_states=prompt_embeds, txt_ids=text_ids,
                                     img_ids=image_ids, return_dict=False)[0]
            prediction = FluxPipeline._unpack_latents(prediction, resolution, resolution, pipe.vae_scale_factor)
        weighting = compute_loss_weighting_for_sd3(weighting_scheme="none", sigmas=sigmas)
        loss = torch.mean((weighting.float() * (prediction.float() - (noise - latents).float()) ** 2).reshape(batch, -1), 1).mean()
        example_update(loss, params, optimizer)
        if step >= warmup:
            times.append(time.perf_counter() - started)
    del pipe, optimizer
    return {"s_per_step": statistics.median(times), "img_per_s": batch / statistics.median(times)}


def project_loop(base, paths, resolution, batch, steps, warmup, precision, device, work: Path, compile: bool, low_memory: bool,
                 pipe=None, **extra) -> dict:
    """lora.train_lora through the run protocol (training `pipe` in place when given; `extra`: other LoraSettings fields);
    steady-state speed after warm-up."""
    settings = LoraSettings(base_model=base.location, resolution=resolution, rank=8, alpha=8.0, batch_size=batch, validation_prompts=(),
                            compile=compile, low_memory=low_memory,
                            run=RunSettings(steps=warmup + steps, log_every=warmup, checkpoint_every=10_000, mixed_precision=precision))
    settings = replace(settings, **extra)
    root = work / f"runs-{batch}-{precision}-{int(compile)}-{int(low_memory)}-{time.monotonic_ns()}"
    examples = [Example(p, "photo of sks person") for p in paths]
    train_lora(examples, root, settings, device, work / "cache", pipe=pipe)
    stats = [json.loads(line) for line in next(root.iterdir()).joinpath("stats.jsonl").read_text().splitlines()]
    timed = stats[-1]["seconds"] - stats[0]["seconds"]  # training time after the first `warmup` steps
    rate = batch * (stats[-1]["step"] - stats[0]["step"]) / timed
    return {"s_per_step": batch / rate, "img_per_s": rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--shape", choices=sorted(SHAPES), default=None, help="default: narrow on CPU, sd15 on CUDA")
    parser.add_argument("--resolution", type=int, default=None, help="default: 256 on CPU, 512 on CUDA")
    parser.add_argument("--batch", type=int, nargs="+", default=None, help="default: 4 on CPU, 1 4 16 on CUDA")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per loop (default 4 CPU, 30 CUDA)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed first steps (the timed steps must be a multiple)")
    parser.add_argument("--repeat", type=int, default=2, help="alternate the two loops this many times")
    parser.add_argument("--precision", default=None, choices=sorted(DTYPES), help="default: no on CPU, fp16/bf16 on CUDA")
    parser.add_argument("--compile", action="store_true", help="also run the project's trainer with torch.compile")
    parser.add_argument("--low-memory", action="store_true", help="also run the project's low_memory setting at batch 1")
    parser.add_argument("--results", type=Path, default=None, help="append a markdown section here")
    parser.add_argument("--family", choices=("sd", "flux"), default="sd", help="flux: FLUX.1 shapes against the flux example recipe")
    parser.add_argument("--quantize", nargs="+", default=["none"], choices=("none", "nf4", "float8"),
                        help="flux on CUDA: also the project trainer with the frozen transformer quantized")
    args = parser.parse_args()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    flux = args.family == "flux"
    shape = args.shape or ({True: "flux1", False: "flux-narrow"}[cuda] if flux else ("sd15" if cuda else "narrow"))
    resolution = args.resolution or (512 if cuda else 256)
    batches = args.batch or ([1] if flux else [1, 4, 16] if cuda else [4])
    steps = args.steps or (30 if cuda else 4)
    precision = args.precision or ("bf16" if cuda else "no")
    example_precision = "fp16" if cuda and args.precision is None else precision

    work = Path(tempfile.mkdtemp(prefix="lora-bench-"))
    try:
        built = build_flux_base(work / "base", shape) if flux else build_base(work / "base", shape)
        base = resolve_base_model(str(built), work / "cache")
        paths = make_images(work / "images", 16, resolution)
        rows = []
        for batch in batches:
            for trial in range(args.repeat):
                if flux:
                    runs = [("example loop (flux recipe: VAE every step)", lambda: example_flux_loop(
                                base, paths, resolution, batch, steps, args.warmup, precision, device), precision)]
                    runs += [(PROJECT + (f", {q} base" if q != "none" else ""), lambda q=q: project_loop(
                                base, paths, resolution, batch, steps, args.warmup, precision, device, work, False, False, rank=16,
                                alpha=16.0, max_sequence_length=128, quantize_base=q), precision) for q in args.quantize]
                else:
                    runs = [("example loop (VAE + text encoder every step)", lambda: example_loop(
                            base, paths, resolution, batch, steps, args.warmup, example_precision, device), example_precision),
                            (PROJECT, lambda: project_loop(
                                base, paths, resolution, batch, steps, args.warmup, precision, device, work, False, False), precision)]
                if args.compile and not flux:
                    runs.append(("project trainer + torch.compile", lambda: project_loop(
                        base, paths, resolution, batch, steps, args.warmup, precision, device, work, True, False), precision))
                if args.low_memory and batch == 1 and not flux:
                    runs.append(("project trainer, low_memory", lambda: project_loop(
                        base, paths, resolution, batch, steps, args.warmup, "fp16" if cuda else precision, device, work, False, True),
                        "fp16" if cuda else precision))
                for name, run, dtype in runs:
                    if cuda:
                        torch.cuda.empty_cache()
                        torch.cuda.reset_peak_memory_stats(device)
                    figures = run()
                    peak = torch.cuda.max_memory_allocated(device) / 2**30 if cuda else float("nan")
                    rows.append({"loop": name, "batch": batch, "trial": trial, "dtype": dtype, **figures, "peak_gib": peak})
                    print(json.dumps(rows[-1]), flush=True)
        report(rows, args, shape, resolution, steps, device)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(rows, args, shape, resolution, steps, device) -> None:
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} torch threads)"
    lines = [f"### LoRA training speed: {shape} shapes, {resolution} px, {where}", "",
             f"`python benchmarks/lora_train.py {' '.join(sys.argv[1:])}` — torch {torch.__version__}, Python "
             f"{platform.python_version()}, {steps} timed steps after {args.warmup} warm-up, median per trial.", "",
             "| loop | batch | dtype | trial | s/step | img/s | peak GiB |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['loop']} | {r['batch']} | {r['dtype']} | {r['trial']} | {r['s_per_step']:.3f} | {r['img_per_s']:.2f} | "
                     f"{r['peak_gib']:.2f} |")
    lines.append("")
    for batch in sorted({r["batch"] for r in rows}):
        example = [r["img_per_s"] for r in rows if r["batch"] == batch and r["loop"].startswith("example")]
        project = [r["img_per_s"] for r in rows if r["batch"] == batch and r["loop"] == PROJECT]
        if example and project:
            lines.append(f"- batch {batch}: project / example = {statistics.median(project) / statistics.median(example):.2f}x "
                         f"(median of {len(project)} trials each)")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.results:
        args.results.parent.mkdir(parents=True, exist_ok=True)
        with open(args.results, "a", encoding="utf-8") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()
