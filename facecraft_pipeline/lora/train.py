"""DreamBooth-style LoRA training on the UNet (the diffusers example recipe), resumable and reusable.

Frozen UNet/VAE/text encoder (in the mixed-precision dtype), fp32 LoRA params on
to_q/to_k/to_v/to_out.0, DDPM noise, MSE on the scheduler's prediction target.
An interrupted run resumes from its last checkpoint; a finished identical run is reused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from facecraft_pipeline.atomic import write_bytes_atomic
from facecraft_pipeline.lora.adapter import WEIGHTS_NAME, add_unet_lora, save_unet_lora, trainable_parameters
from facecraft_pipeline.lora.base_model import BaseModel, load_pipeline, resolve_base_model
from facecraft_pipeline.lora.batches import TrainingBatches
from facecraft_pipeline.lora.checkpoints import TrainingState, latest_checkpoint, remove_other_runs, save_checkpoint
from facecraft_pipeline.lora.data import file_digest, load_training_images
from facecraft_pipeline.lora.settings import LoraSettings, LoraTrainResult

if TYPE_CHECKING:  # diffusers loads lazily: importing this package stays cheap for Dagster
    from diffusers import StableDiffusionPipeline

FACTS_NAME = "lora_training.json"
RECIPE_VERSION = 1  # bump when the training maths changes: old checkpoints then stop matching
_DTYPES = {"no": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
# Settings that do not change what a step computes: a run may resume or extend across them.
_NOT_IN_FINGERPRINT = {"steps", "checkpoint_every", "checkpoints_to_keep", "log_every"}

MetricsCallback = Callable[[int, dict[str, float]], None]


def train_lora(
    image_paths: Sequence[Path],
    out_dir: Path,
    settings: LoraSettings,
    device: torch.device | str = "cpu",
    cache_dir: Path | None = None,
    on_metrics: MetricsCallback | None = None,
    *,
    pipe: StableDiffusionPipeline | None = None,
) -> LoraTrainResult:
    """Train (or resume, or reuse) a LoRA and write out_dir/pytorch_lora_weights.safetensors + lora_training.json.

    `cache_dir` holds built/downloaded base models (default out_dir/base_model_cache). `pipe`, if
    given, is a pipeline of this base model to train in place (it ends with the LoRA active),
    which spares the caller a reload.
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    base = resolve_base_model(settings.base_model, Path(cache_dir) if cache_dir else out_dir / "base_model_cache")
    images = [{"path": str(p), "sha256": file_digest(Path(p))} for p in image_paths]
    if not images:
        raise ValueError("LoRA training needs at least one image")
    fingerprint = _fingerprint(settings, base, [image["sha256"] for image in images])

    facts = _read_facts(out_dir)
    if (
        facts
        and facts["fingerprint"] == fingerprint
        and facts["steps"] == settings.steps
        and (out_dir / WEIGHTS_NAME).is_file()
    ):
        if pipe is not None:
            pipe.load_lora_weights(out_dir)
        return _result(out_dir, base, facts, reused=True)

    for stale in (out_dir / FACTS_NAME, out_dir / WEIGHTS_NAME):  # the folder never claims an older run
        stale.unlink(missing_ok=True)
    torch_device = torch.device(device)
    dtype = _DTYPES[settings.mixed_precision]
    if pipe is None:
        pipe = load_pipeline(base, torch_device, dtype)
    else:
        pipe.to(device=torch_device, dtype=dtype)
    loop = _Loop(pipe, settings, torch_device, dtype, fingerprint, out_dir / "checkpoints")
    pixels = load_training_images([Path(p) for p in image_paths], settings.resolution)
    resumed_from = loop.resume()
    if resumed_from == 0:
        remove_other_runs(out_dir / "checkpoints", fingerprint)
    batches = TrainingBatches(pipe, pixels, settings, dtype, loop.generator)
    loop_seconds, final_loss = loop.run(batches, resumed_from, on_metrics)

    save_unet_lora(pipe.unet, loop.lora_config, out_dir)
    trained_images = (settings.steps - resumed_from) * settings.batch_size
    facts = {
        "fingerprint": fingerprint,
        "steps": settings.steps,
        "resumed_from": resumed_from,
        "final_loss": final_loss,
        "device": str(torch_device),
        "dtype": str(dtype).removeprefix("torch."),
        "lora_params_dtype": "float32",
        "seconds": time.perf_counter() - started,
        "images_per_second": trained_images / loop_seconds if loop_seconds > 0 else 0.0,
        "base_model": dataclasses.asdict(base),
        "settings": dataclasses.asdict(settings),
        "lora_config": {
            "r": settings.rank,
            "lora_alpha": settings.alpha,
            "target_modules": list(loop.lora_config.target_modules),
        },
        "prediction_type": loop.noise_scheduler.config.prediction_type,
        "images": images,
        "weights_file": WEIGHTS_NAME,
        "versions": _versions(),
    }
    write_bytes_atomic(out_dir / FACTS_NAME, (json.dumps(facts, indent=2) + "\n").encode())
    return _result(out_dir, base, facts, reused=False)


class _Loop:
    """The optimisation loop and its resumable state."""

    def __init__(
        self,
        pipe: StableDiffusionPipeline,
        settings: LoraSettings,
        device: torch.device,
        dtype: torch.dtype,
        fingerprint: str,
        checkpoints: Path,
    ):
        from diffusers import DDPMScheduler
        from diffusers.training_utils import cast_training_params

        self.pipe, self.settings, self.device, self.dtype = pipe, settings, device, dtype
        self.fingerprint, self.checkpoints = fingerprint, checkpoints
        for model in (pipe.unet, pipe.vae, pipe.text_encoder):
            model.requires_grad_(False)
        if getattr(pipe.unet, "peft_config", None):
            raise ValueError("the pipeline's UNet already has a LoRA adapter; train on a fresh base pipeline")
        self.noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
        self.lora_config = add_unet_lora(pipe.unet, settings.rank, settings.alpha, settings.seed)
        cast_training_params(pipe.unet, dtype=torch.float32)  # LoRA params fp32 even with bf16/fp16 weights
        if settings.gradient_checkpointing:
            pipe.unet.enable_gradient_checkpointing()
        self.params = trainable_parameters(pipe.unet)
        self.optimizer = torch.optim.AdamW(
            list(self.params.values()), lr=settings.learning_rate, weight_decay=settings.adam_weight_decay
        )
        self.scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
        self.generator = torch.Generator().manual_seed(settings.seed)
        self.window: list[float] = []
        self.last_loss = float("nan")

    def resume(self) -> int:
        """Load the newest matching checkpoint; returns its step (0 when starting fresh)."""
        state = latest_checkpoint(self.checkpoints, self.fingerprint, self.settings.steps)
        if state is None:
            return 0
        with torch.no_grad():
            for name, param in self.params.items():
                param.copy_(state.lora[name])
        self.optimizer.load_state_dict(state.optimizer)
        if state.scaler:
            self.scaler.load_state_dict(state.scaler)
        self.generator.set_state(state.generator)
        self.window = list(state.window_losses)
        self.last_loss = state.last_loss
        return state.step

    def run(self, batches: TrainingBatches, start: int, on_metrics: MetricsCallback | None) -> tuple[float, float]:
        """Steps start+1..settings.steps; returns (loop seconds, mean loss of the last logging window)."""
        unet, settings = self.pipe.unet, self.settings
        unet.train()
        loop_seconds = 0.0
        window_started, window_steps = time.perf_counter(), 0
        try:
            for step in range(start + 1, settings.steps + 1):
                tick = time.perf_counter()
                loss = self._step(*batches(step - 1))
                loop_seconds += time.perf_counter() - tick
                self.window.append(loss)
                window_steps += 1
                metrics = None
                if step % settings.log_every == 0 or step == settings.steps:
                    elapsed = time.perf_counter() - window_started
                    self.last_loss = sum(self.window) / len(self.window)
                    rate = window_steps * settings.batch_size / elapsed if elapsed > 0 else 0.0
                    metrics = {"loss": self.last_loss, "img_per_s": rate, "lr": settings.learning_rate}
                    self.window = []
                if settings.checkpoint_every and step % settings.checkpoint_every == 0:
                    self._checkpoint(step)  # before reporting: a callback that stops the run loses nothing
                if metrics is not None:
                    if on_metrics is not None:
                        on_metrics(step, metrics)
                    window_started, window_steps = time.perf_counter(), 0
        finally:
            unet.eval()
        return loop_seconds, self.last_loss

    def _step(self, latents: torch.Tensor, prompt: torch.Tensor) -> float:
        settings, scheduler = self.settings, self.noise_scheduler
        count = latents.shape[0]
        noise = torch.randn(latents.shape, generator=self.generator)
        if settings.noise_offset:
            noise += settings.noise_offset * torch.randn((count, latents.shape[1], 1, 1), generator=self.generator)
        noise = noise.to(self.device, latents.dtype)
        timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (count,), generator=self.generator).to(
            self.device
        )
        noisy = scheduler.add_noise(latents, noise, timesteps)
        if scheduler.config.prediction_type == "v_prediction":
            target = scheduler.get_velocity(latents, noise, timesteps)
        else:
            target = noise
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32):
            prediction = self.pipe.unet(noisy, timesteps, prompt, return_dict=False)[0]
        loss = self._loss(prediction.float(), target.float(), timesteps)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(list(self.params.values()), settings.max_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return float(loss.detach())

    def _loss(self, prediction: torch.Tensor, target: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        if self.settings.snr_gamma is None:
            return F.mse_loss(prediction, target, reduction="mean")
        from diffusers.training_utils import compute_snr

        snr = compute_snr(self.noise_scheduler, timesteps)
        weights = torch.clamp(snr, max=self.settings.snr_gamma)
        weights = (
            weights / (snr + 1) if self.noise_scheduler.config.prediction_type == "v_prediction" else weights / snr
        )
        per_item = F.mse_loss(prediction, target, reduction="none").mean(dim=(1, 2, 3))
        return (per_item * weights).mean()

    def _checkpoint(self, step: int) -> None:
        state = TrainingState(
            step=step,
            fingerprint=self.fingerprint,
            lora={name: param.detach() for name, param in self.params.items()},
            optimizer=self.optimizer.state_dict(),
            scaler=self.scaler.state_dict(),
            generator=self.generator.get_state(),
            window_losses=list(self.window),
            last_loss=self.last_loss,
        )
        save_checkpoint(self.checkpoints, state, self.settings.checkpoints_to_keep)


def _fingerprint(settings: LoraSettings, base: BaseModel, digests: list[str]) -> str:
    fields = {k: v for k, v in dataclasses.asdict(settings).items() if k not in _NOT_IN_FINGERPRINT}
    payload = {"recipe": RECIPE_VERSION, "settings": fields, "base": [base.spec, base.location], "images": digests}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _read_facts(out_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((out_dir / FACTS_NAME).read_text())
    except (OSError, ValueError):
        return None


def _result(out_dir: Path, base: BaseModel, facts: dict[str, Any], reused: bool) -> LoraTrainResult:
    return LoraTrainResult(
        weights_dir=out_dir,
        weights_file=out_dir / WEIGHTS_NAME,
        base_model=base,
        steps=facts["steps"],
        resumed_from=facts["resumed_from"],
        reused=reused,
        final_loss=facts["final_loss"],
        device=facts["device"],
        dtype=facts["dtype"],
        seconds=facts["seconds"],
        images_per_second=facts["images_per_second"],
    )


def _versions() -> dict[str, str]:
    import diffusers
    import peft

    return {"torch": torch.__version__, "diffusers": diffusers.__version__, "peft": peft.__version__}
