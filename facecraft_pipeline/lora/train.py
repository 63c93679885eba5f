"""The LoRA trainer (the diffusers DreamBooth-LoRA recipe): model, loss and step; the run protocol is `training.train`.

Frozen UNet/VAE/text encoder (in the mixed-precision dtype), fp32 LoRA params on
to_q/to_k/to_v/to_out.0, DDPM noise, MSE on the scheduler's prediction target (Min-SNR optional).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from facecraft_pipeline.digest import files_digest
from facecraft_pipeline.lora.adapter import add_unet_lora, save_unet_lora, trainable_parameters
from facecraft_pipeline.lora.base_model import BaseModel, load_pipeline, resolve_base_model
from facecraft_pipeline.lora.batches import TrainingBatches
from facecraft_pipeline.lora.settings import LoraSettings
from facecraft_pipeline.training import Progress, RunFolder, TrainResult, run_key, train
from facecraft_pipeline.training.images import load_images, to_float
from facecraft_pipeline.training.loop import RunSpec
from facecraft_pipeline.training.precision import dtype, dtype_name, grad_scaler
from facecraft_pipeline.settings import to_dict

if TYPE_CHECKING:  # diffusers loads lazily: importing this package stays cheap for Dagster
    from diffusers import StableDiffusionPipeline

RECIPE_VERSION = 2  # bump when the training maths changes: old runs then get a new key


def train_lora(image_paths: Sequence[Path], root: Path, settings: LoraSettings, device: torch.device | str = "cpu",
               cache_dir: Path | None = None, progress: Sequence[Progress] = (), *,
               pipe: StableDiffusionPipeline | None = None) -> TrainResult:
    """Train (or reuse, resume, extend) into `root/<n>-lora-...-<key>/`; artifact `weights`.

    `cache_dir` holds built/downloaded base models (default root/base_model_cache). `pipe`, if
    given, is a pipeline of this base model to train in place (it ends with the LoRA active),
    which spares the caller a reload. The result's `info["base_model"]` describes the base model.
    """
    device = torch.device(device)
    root = Path(root)
    base = resolve_base_model(settings.base_model, Path(cache_dir) if cache_dir else root / "base_model_cache")
    paths = [Path(p) for p in image_paths]
    if not paths:
        raise ValueError("LoRA training needs at least one image")
    digest = files_digest(paths)
    frozen = dtype(settings.run.mixed_precision)
    spec = RunSpec(
        root=root,
        key=run_key(digest, settings, RECIPE_VERSION, extra=[base.spec, base.location]),
        description=f"lora-r{settings.rank}-{settings.resolution}px",
        run=settings.run,
        info={"settings": to_dict(settings), "inputs": {"images": len(paths), "digest": digest},
              "base_model": dataclasses.asdict(base), "device": str(device), "dtype": dtype_name(settings.run.mixed_precision),
              "lora_params_dtype": "float32", "recipe": RECIPE_VERSION, "versions": _versions()},
    )

    def make_trainer() -> LoraTrainer:
        pipeline = pipe if pipe is not None else load_pipeline(base, device, frozen)
        pipeline.to(device=device, dtype=frozen)
        return LoraTrainer(pipeline, to_float(load_images(paths, settings.resolution)), settings, device)

    result = train(spec, make_trainer, progress, device)
    if result.reused and pipe is not None:
        pipe.load_lora_weights(str(result.folder))
    return result


def base_model_of(result: TrainResult) -> BaseModel:
    """The base model a LoRA run trained on (from its run.json)."""
    return BaseModel(**result.info["base_model"])


class LoraTrainer:
    """LoRA parameters on a frozen pipeline, AdamW, and one denoising step."""

    metric_names = ("loss",)

    def __init__(self, pipe: StableDiffusionPipeline, pixels: torch.Tensor, settings: LoraSettings, device: torch.device):
        from diffusers import DDPMScheduler
        from diffusers.training_utils import cast_training_params

        if getattr(pipe.unet, "peft_config", None):
            raise ValueError("the pipeline's UNet already has a LoRA adapter; train on a fresh base pipeline")
        self.pipe, self.settings, self.device = pipe, settings, device
        self.dtype = dtype(settings.run.mixed_precision)
        self.images_per_step = settings.batch_size
        for model in (pipe.unet, pipe.vae, pipe.text_encoder):
            model.requires_grad_(False)
        self.noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
        self.lora_config = add_unet_lora(pipe.unet, settings.rank, settings.alpha, settings.run.seed)
        cast_training_params(pipe.unet, dtype=torch.float32)  # LoRA params fp32 even with bf16/fp16 weights
        if settings.gradient_checkpointing:
            pipe.unet.enable_gradient_checkpointing()
        self.params = trainable_parameters(pipe.unet)
        self.optimizer = torch.optim.AdamW(list(self.params.values()), lr=settings.learning_rate,
                                           weight_decay=settings.adam_weight_decay)
        self.scaler = grad_scaler(device, settings.run.mixed_precision)
        self.generator = torch.Generator().manual_seed(settings.run.seed)
        self.batches = TrainingBatches(pipe, pixels, settings, self.dtype, self.generator)
        self.steps_done = 0
        pipe.unet.train()

    def step(self) -> torch.Tensor:
        latents, prompt = self.batches(self.steps_done)
        settings, scheduler = self.settings, self.noise_scheduler
        count = latents.shape[0]
        noise = torch.randn(latents.shape, generator=self.generator)
        if settings.noise_offset:
            noise += settings.noise_offset * torch.randn((count, latents.shape[1], 1, 1), generator=self.generator)
        noise = noise.to(self.device, latents.dtype)
        timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (count,), generator=self.generator).to(self.device)
        noisy = scheduler.add_noise(latents, noise, timesteps)
        target = scheduler.get_velocity(latents, noise, timesteps) if scheduler.config.prediction_type == "v_prediction" else noise
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32):
            prediction = self.pipe.unet(noisy, timesteps, prompt, return_dict=False)[0]
        loss = self._loss(prediction.float(), target.float(), timesteps)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(list(self.params.values()), settings.max_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.steps_done += 1
        return loss.detach().reshape(1)

    def _loss(self, prediction: torch.Tensor, target: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        if self.settings.snr_gamma is None:
            return F.mse_loss(prediction, target, reduction="mean")
        from diffusers.training_utils import compute_snr

        snr = compute_snr(self.noise_scheduler, timesteps)
        weights = torch.clamp(snr, max=self.settings.snr_gamma)
        weights = weights / (snr + 1) if self.noise_scheduler.config.prediction_type == "v_prediction" else weights / snr
        per_item = F.mse_loss(prediction, target, reduction="none").mean(dim=(1, 2, 3))
        return (per_item * weights).mean()

    def state_dict(self) -> dict[str, Any]:
        return {"lora": {name: p.detach().cpu().clone() for name, p in self.params.items()},
                "optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict(),
                "generator": self.generator.get_state(), "steps_done": self.steps_done,
                "lora_config": {"r": self.settings.rank, "lora_alpha": self.settings.alpha,
                                "target_modules": sorted(self.lora_config.target_modules)}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        with torch.no_grad():
            for name, param in self.params.items():
                param.copy_(state["lora"][name])
        self.optimizer.load_state_dict(state["optimizer"])
        if state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        self.generator.set_state(state["generator"])
        self.steps_done = int(state["steps_done"])

    def sample(self, folder: RunFolder, step: int) -> None:
        """No grids while training (the evaluation sweep renders the kept checkpoints)."""

    def finish(self, folder: RunFolder) -> dict[str, Path]:
        self.pipe.unet.eval()
        return {"weights": save_unet_lora(self.pipe.unet, self.lora_config, folder.path)}


def _versions() -> dict[str, str]:
    import diffusers
    import peft

    return {"torch": torch.__version__, "diffusers": diffusers.__version__, "peft": peft.__version__}
