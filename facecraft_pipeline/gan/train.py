"""The GAN training loop (DCGAN or WGAN-GP), resumable from its own checkpoint.

Every random draw of training (batches, flips, augmentation, latents, interpolation weights)
comes from one torch.Generator on the device whose state is checkpointed, and the networks are
initialised from the seed, so an interrupted run that resumes ends with the same weights as an
uninterrupted one (bit for bit on CPU).
"""

from __future__ import annotations

import copy
import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from facecraft_pipeline.gan.augment import diff_augment, random_flip
from facecraft_pipeline.gan.checkpoint import FORMAT, load_generator, read_checkpoint, save_checkpoint, state_is_finite
from facecraft_pipeline.gan.data import dataset_digest, load_images, to_float
from facecraft_pipeline.gan.losses import dcgan_d_loss, dcgan_g_loss, gradient_penalty, wgan_d_loss, wgan_g_loss
from facecraft_pipeline.gan.models import build_discriminator, build_generator
from facecraft_pipeline.gan.sample import sample_images, write_gif, write_grid
from facecraft_pipeline.gan.settings import RESUMABLE_FIELDS, GanSettings

MetricsCallback = Callable[[int, dict[str, float]], None]
METRIC_NAMES = {"dcgan": ("loss_d", "loss_g", "d_real", "d_fake"), "wgan_gp": ("loss_d", "loss_g", "gp", "wasserstein")}
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class GanDivergedError(FloatingPointError):
    """A loss or weight became NaN/inf; nothing non-finite was written to disk."""


@dataclass(frozen=True)
class GanTrainResult:
    """What a (possibly resumed or reused) run produced. `seconds` and `images_per_second` cover all
    sessions that led to the checkpoint (training time only, not file writing); images are real
    images through D (batch_size * n_critic per step for WGAN-GP)."""

    checkpoint: Path
    samples: Path
    steps: int
    resumed_from: int
    reused: bool
    final_metrics: dict[str, float]
    device: str
    dtype: str
    images_per_second: float
    seconds: float
    gif: Path | None = field(default=None)


def train_gan(image_paths: Sequence[Path], out_dir: Path, settings: GanSettings, device: torch.device | str = "cpu",
              on_metrics: MetricsCallback | None = None, *, restart: bool = False) -> GanTrainResult:
    """Train into out_dir (checkpoint.pt, samples/step_XXXXXX.png, samples.png, training.gif).

    An existing checkpoint with the same settings (except steps and write cadences) and the same
    images is resumed; if it is already at `steps`, it is returned as is (reused=True). Any other
    existing checkpoint raises ValueError naming the differences, unless restart=True discards it.
    Image order does not matter (paths are sorted). `on_metrics(step, metrics)` is called every
    `log_every` steps and at the end.
    """
    device = torch.device(device)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path, samples_path, samples_dir = out_dir / "checkpoint.pt", out_dir / "samples.png", out_dir / "samples"
    paths = sorted(Path(p) for p in image_paths)
    digest = dataset_digest(paths)
    if restart:
        ckpt_path.unlink(missing_ok=True)
    state = _resumable_state(ckpt_path, settings, digest, device)
    if state is not None and state["step"] == settings.steps:
        if not samples_path.exists():
            write_grid(sample_images(load_generator(ckpt_path, device), settings.sample_count, settings.seed), samples_path)
        gif = out_dir / "training.gif"
        return _result(state, ckpt_path, samples_path, resumed_from=state["step"], reused=True,
                       gif=gif if gif.exists() else None)
    resumed_from = state["step"] if state is not None else 0
    for old in samples_dir.glob("step_*.png"):  # grids from a discarded run or from beyond the checkpoint
        if int(old.stem.split("_")[1]) > resumed_from:
            old.unlink()

    # -- data, models, optimisers --------------------------------------------------------------
    wgan = settings.kind == "wgan_gp"
    fmt = torch.channels_last if settings.channels_last else torch.contiguous_format
    images = load_images(paths, settings.resolution).to(device)
    G = build_generator(settings).to(device, memory_format=fmt)
    D = build_discriminator(settings).to(device, memory_format=fmt)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False) if settings.ema_decay > 0 else None
    opt_g = torch.optim.Adam(G.parameters(), lr=settings.lr, betas=settings.betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=settings.lr, betas=settings.betas)
    amp_dtype = AMP_DTYPES.get(settings.mixed_precision)
    autocast = functools.partial(torch.autocast, device.type, dtype=amp_dtype, enabled=amp_dtype is not None)
    scaler_g = torch.amp.GradScaler(device.type, enabled=settings.mixed_precision == "fp16")
    scaler_d = torch.amp.GradScaler(device.type, enabled=settings.mixed_precision == "fp16")
    rng = torch.Generator(device=device).manual_seed(settings.seed)
    step, seconds, images_seen, metrics = 0, 0.0, 0, {}
    if state is not None:
        G.load_state_dict(state["G"])
        D.load_state_dict(state["D"])
        if G_ema is not None:
            G_ema.load_state_dict(state["G_ema"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        scaler_g.load_state_dict(state["scaler_g"])
        scaler_d.load_state_dict(state["scaler_d"])
        rng.set_state(state["rng"].cpu())
        step, seconds, images_seen, metrics = state["step"], state["seconds"], state["images_seen"], state["metrics"]
        del state

    def real_batch() -> torch.Tensor:
        x = to_float(images[torch.randint(len(images), (settings.batch_size,), device=device, generator=rng)])
        return (random_flip(x, rng) if settings.flip else x).contiguous(memory_format=fmt)

    def latents() -> torch.Tensor:
        return torch.randn(settings.batch_size, settings.latent_dim, device=device, generator=rng)

    def augment(x: torch.Tensor) -> torch.Tensor:
        return diff_augment(x, settings.augment_ops, rng)

    def checkpoint_state() -> dict[str, Any]:
        ckpt = {"format": FORMAT, "step": step, "settings": settings.to_dict(), "data_digest": digest,
                "device": str(device), "dtype": settings.dtype_name, "metrics": metrics, "seconds": seconds,
                "images_seen": images_seen, "G": G.state_dict(), "D": D.state_dict(),
                "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "scaler_g": scaler_g.state_dict(),
                "scaler_d": scaler_d.state_dict(), "rng": rng.get_state()}
        if G_ema is not None:
            ckpt["G_ema"] = G_ema.state_dict()
        if not state_is_finite(ckpt):
            raise GanDivergedError(f"non-finite weights at step {step}; checkpoint not written (last good: {ckpt_path})")
        return ckpt

    # -- training ------------------------------------------------------------------------------
    names = METRIC_NAMES[settings.kind]
    n_d = settings.n_critic if wgan else 1
    sums = torch.zeros(len(names), device=device)
    finite = torch.ones((), dtype=torch.bool, device=device)
    interval_steps, interval_start = 0, time.perf_counter()
    G.train()
    D.train()
    while step < settings.steps:
        for _ in range(n_d):  # D / critic
            real = real_batch()
            with torch.no_grad(), autocast():
                fake = G(latents())
            with autocast():
                real_aug, fake_aug = augment(real), augment(fake)
                real_out, fake_out = D(real_aug), D(fake_aug)
                if wgan:
                    gp = gradient_penalty(D, real_aug, fake_aug, rng)
                    loss_d = wgan_d_loss(real_out, fake_out) + settings.gp_lambda * gp
                else:
                    loss_d = dcgan_d_loss(real_out, fake_out, settings.label_smoothing)
            opt_d.zero_grad(set_to_none=True)
            scaler_d.scale(loss_d).backward()
            scaler_d.step(opt_d)
            scaler_d.update()
        D.requires_grad_(False)  # G step: no weight gradients for D
        with autocast():
            loss_g = (wgan_g_loss if wgan else dcgan_g_loss)(D(augment(G(latents()))))
        opt_g.zero_grad(set_to_none=True)
        scaler_g.scale(loss_g).backward()
        scaler_g.step(opt_g)
        scaler_g.update()
        D.requires_grad_(True)
        if G_ema is not None:  # warm-up: early on the average would mostly remember the random init
            decay = min(settings.ema_decay, (1 + step) / (10 + step))
            with torch.no_grad():
                for p_ema, p in zip(G_ema.parameters(), G.parameters(), strict=True):
                    p_ema.lerp_(p, 1 - decay)
                for b_ema, b in zip(G_ema.buffers(), G.buffers(), strict=True):
                    b_ema.copy_(b)
        with torch.no_grad():  # accumulate on the device: no host sync per step
            if wgan:
                extra = (gp, real_out.mean() - fake_out.mean())
            else:
                extra = (torch.sigmoid(real_out).mean(), torch.sigmoid(fake_out).mean())
            values = torch.stack([loss_d.detach(), loss_g.detach(), *extra]).float()
            sums += values
            finite &= torch.isfinite(values).all()
        step += 1
        interval_steps += 1
        images_seen += settings.batch_size * n_d

        last = step == settings.steps
        log, ckpt, sample = (last or step % every == 0 for every in
                             (settings.log_every, settings.checkpoint_every, settings.sample_every))
        if not (log or ckpt or sample):
            continue
        if not bool(finite):
            raise GanDivergedError(f"{settings.kind}: loss became NaN/inf before step {step} "
                                   f"(lr={settings.lr}); last good checkpoint: {ckpt_path}")
        now = time.perf_counter()
        seconds += now - interval_start
        if log:
            metrics = dict(zip(names, (sums / interval_steps).tolist(), strict=True))
            metrics["img_per_s"] = interval_steps * settings.batch_size * n_d / max(now - interval_start, 1e-9)
            sums.zero_()
            interval_steps = 0
            if on_metrics is not None:
                on_metrics(step, dict(metrics))
        if sample:
            grid = sample_images(G_ema or G, settings.sample_count, settings.seed)
            write_grid(grid, samples_dir / f"step_{step:06d}.png")
        if ckpt:
            save_checkpoint(checkpoint_state(), ckpt_path)
        interval_start = time.perf_counter()

    write_grid(sample_images(G_ema or G, settings.sample_count, settings.seed), samples_path)
    gif = write_gif(sorted(samples_dir.glob("step_*.png")), out_dir / "training.gif")
    final = read_checkpoint(ckpt_path)
    return _result(final, ckpt_path, samples_path, resumed_from=resumed_from, reused=False, gif=gif)


def _resumable_state(path: Path, settings: GanSettings, digest: str, device: torch.device) -> dict[str, Any] | None:
    """The checkpoint in out_dir if this call may continue it; None if there is none."""
    if not path.exists():
        return None
    state = read_checkpoint(path, device)
    stored, current = state["settings"], settings.to_dict()
    differing = [f"{k}: {stored.get(k)!r} -> {v!r}" for k, v in current.items()
                 if k not in RESUMABLE_FIELDS and stored.get(k) != v]
    if differing:
        raise ValueError(f"{path} was trained with other settings ({'; '.join(differing)}): "
                         "use another out_dir, or restart=True to discard it")
    if state["data_digest"] != digest:
        raise ValueError(f"{path} was trained on other images: use another out_dir, or restart=True to discard it")
    if state["step"] > settings.steps:
        raise ValueError(f"{path} is at step {state['step']}, beyond steps={settings.steps}")
    return state


def _result(state: dict[str, Any], checkpoint: Path, samples: Path, resumed_from: int, reused: bool,
            gif: Path | None) -> GanTrainResult:
    seconds = float(state["seconds"])
    return GanTrainResult(checkpoint=checkpoint, samples=samples, steps=int(state["step"]), resumed_from=resumed_from,
                          reused=reused, final_metrics=dict(state["metrics"]), device=str(state["device"]),
                          dtype=str(state["dtype"]), images_per_second=state["images_seen"] / max(seconds, 1e-9),
                          seconds=seconds, gif=gif)
