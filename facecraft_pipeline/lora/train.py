"""The LoRA trainer (DreamBooth-LoRA as kohya / ai-toolkit do it): model, loss and step; the run protocol is `training.train`.

Frozen denoiser/VAE/text encoders in the mixed-precision dtype, fp32 LoRA params (UNet attention, or
FLUX.1's attention and MLP, and optionally SD's text encoders), noise (+ offset noise), MSE on the
family's target weighted towards the face (and by Min-SNR for DDPM), prior preservation on cached
class images, gradient accumulation, clipping, a warmup + constant/cosine/linear schedule, optional
EMA. One trainer for every family; what differs (noise and target, the denoiser's call, prompt
encoding, files) is the family's code in `families/` (SD 1.x/2.x and SDXL: DDPM; FLUX.1: rectified flow).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from facecraft_pipeline.dataset.diffusion_crops import Example
from facecraft_pipeline.digest import sha256_file
from facecraft_pipeline.lora.adapter import (
    TEXT_TARGET_MODULES,
    adapter_config,
    add_lora,
    checkpoint_weights,
    peft_layers,
    save_lora,
    trainable_parameters,
)
from facecraft_pipeline.lora.base_model import BaseModel, load_pipeline, resolve_base_model
from facecraft_pipeline.lora.batches import Batch
from facecraft_pipeline.lora.families import check_settings, family
from facecraft_pipeline.lora.families.ops import ops_for
from facecraft_pipeline.lora.init_lora import init_tensors, load_init
from facecraft_pipeline.lora.memory import apply_vram_preset, check_quantization
from facecraft_pipeline.lora.optim import Ema, bitsandbytes_available, lr_lambda, make_optimizer
from facecraft_pipeline.lora.prior import class_images
from facecraft_pipeline.lora.settings import LoraSettings
from facecraft_pipeline.settings import to_dict
from facecraft_pipeline.training import Progress, RunFolder, TrainResult, run_key, train
from facecraft_pipeline.training.checkpoints import Checkpoints
from facecraft_pipeline.training.distributed import World, current_world, local_device
from facecraft_pipeline.training.loop import RunSpec
from facecraft_pipeline.training.precision import dtype, dtype_name, grad_scaler

if TYPE_CHECKING:  # diffusers loads lazily: importing this package stays cheap for Dagster
    from diffusers import StableDiffusionPipeline

RECIPE_VERSION = 3  # bump when the training maths changes: old runs then get a new key


def train_lora(examples: Sequence[Path | Example], root: Path, settings: LoraSettings, device: torch.device | str = "cpu",
               cache_dir: Path | None = None, progress: Sequence[Progress] = (), *,
               pipe: StableDiffusionPipeline | None = None, dataset_digest: str | None = None,
               held_out: Sequence[Path | Example] = ()) -> TrainResult:
    """Train (or reuse, resume, extend) into `root/<n>-lora-...-<key>/`; artifacts `weights`, `kohya_weights`, `validation`.

    `examples` are plain image paths (captioned with `settings.instance_prompt`) or `Example`s
    (caption, mirrored caption, face box, original size: `dataset.diffusion_crops` makes them).
    `cache_dir` holds built/downloaded base models and class images (default root/base_model_cache).
    `pipe`, if given, is a pipeline of this base model to train in place (it ends with the LoRA
    active). `dataset_digest` (e.g. the curated dataset's) goes into the weights' provenance. `held_out` are
    images not trained on: with `settings.validation_loss_every` their loss is logged as val_loss.
    """
    device = local_device(device)
    world = current_world(device)  # several processes under torchrun: the batch is the global one
    root = Path(root)
    cache = Path(cache_dir) if cache_dir else root / "base_model_cache"
    base = resolve_base_model(settings.base_model, cache, settings.model_family, settings.base_components)
    check_settings(settings, base.family)
    settings = apply_vram_preset(settings, base.family)
    check_quantization(settings.quantize_base, device)
    if settings.init_lora:  # refused now, before any weights load, when it is another family's or rank's
        init_tensors(Path(settings.init_lora), base.family, settings.rank)
    items = [e if isinstance(e, Example) else Example(Path(e), settings.instance_prompt) for e in examples]
    if not items:
        raise ValueError("LoRA training needs at least one image")
    held = [e if isinstance(e, Example) else Example(Path(e), settings.instance_prompt) for e in held_out]
    if settings.validation_loss_every and settings.validation_loss_every % settings.run.log_every:
        raise ValueError(f"LoraSettings.validation_loss_every must be a multiple of run.log_every ({settings.run.log_every}), "
                         f"got {settings.validation_loss_every}")
    digest = examples_digest(items)
    starts = [sha256_file(Path(settings.init_lora))] if settings.init_lora else []  # a warm start is another run
    key = run_key(digest, settings, RECIPE_VERSION,
                  extra=[base.spec, base.location, base.family, *([base.components] if base.components else []), *starts])
    info = {"settings": {**to_dict(settings), "instance_prompt": settings.instance_prompt},
            "inputs": {"images": len(items), "digest": digest, "dataset_digest": dataset_digest},
            "base_model": dataclasses.asdict(base), "device": str(device), "dtype": dtype_name(settings.run.mixed_precision),
            "lora_params_dtype": "float32", "recipe": RECIPE_VERSION, "versions": _versions()}
    spec = RunSpec(root=root, key=key, description=f"lora-{base.family}-r{settings.rank}-{settings.resolution}px",
                   run=settings.run, info=info)
    provenance = _provenance(settings, base, dataset_digest or digest, key, len(items))

    def make_trainer() -> LoraTrainer:
        frozen = dtype(settings.run.mixed_precision)
        if device.type == "cuda" and settings.allow_tf32:
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        pipeline = pipe if pipe is not None else load_pipeline(base, device, frozen, settings.quantize_base)
        if settings.quantize_base == "none":  # quantized weights keep their storage type
            pipeline.to(device=device, dtype=frozen)
        classes = []
        if settings.prior.num_images:
            if world.main:  # drawn and cached once; the other ranks read the cache
                classes = class_images(pipeline, base, settings, cache)
            world.barrier()
            classes = classes or class_images(pipeline, base, settings, cache)
        provenance["ss_num_reg_images"] = str(len(classes))
        return LoraTrainer(pipeline, items, settings, device, classes, provenance, world, owns_pipeline=pipe is None,
                           held_out=held)

    result = train(spec, make_trainer, progress, device, world)
    if result.reused and pipe is not None:
        pipe.load_lora_weights(str(result.folder))
    return result


def base_model_of(result: TrainResult) -> BaseModel:
    """The base model a LoRA run trained on (from its run.json)."""
    if result.info.base_model is None:
        raise ValueError(f"{result.folder}/run.json records no base model: not a LoRA run")
    return BaseModel(**result.info.base_model)


def examples_digest(items: Sequence[Example]) -> str:
    """What the images and their captions, face boxes (the owner's and others') and sizes are; order does not matter."""
    rows = sorted(json.dumps([sha256_file(e.image), e.caption, e.flipped_caption, e.face_box, e.original_size]
                             + ([e.other_faces] if e.other_faces else [])) for e in items)
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()


def weighted_mse(prediction: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Per-item mean squared error; `weights` (B, 1, h, w) weights each latent pixel (kohya's masked loss)."""
    error = (prediction.float() - target.float()) ** 2
    if weights is None:
        return error.mean(dim=(1, 2, 3))
    weights = weights.float().expand_as(error)
    return (error * weights).sum(dim=(1, 2, 3)) / weights.sum(dim=(1, 2, 3)).clamp_min(1e-8)


class LoraTrainer:
    """LoRA parameters on a frozen pipeline, AdamW, and one (accumulated) denoising step."""

    def __init__(self, pipe, examples: Sequence[Example], settings: LoraSettings, device: torch.device,
                 class_paths: Sequence[Path] = (), provenance: Mapping[str, str] | None = None, world: World = World(),
                 owns_pipeline: bool = False, held_out: Sequence[Example] = ()):
        """`owns_pipeline`: the trainer loaded `pipe` itself, so it may drop what training no longer needs (FLUX.1's
        text encoders once the captions are encoded); a pipeline handed in only has them moved off the device.
        `held_out`: images whose loss `held_out_metrics` measures every `settings.validation_loss_every` steps."""
        from diffusers.training_utils import cast_training_params

        self.dtype = dtype(settings.run.mixed_precision)
        self.ops = ops_for(pipe, settings, torch.device(device), self.dtype)  # what differs per family
        denoiser = self.ops.denoiser
        if getattr(denoiser, "peft_config", None):
            raise ValueError(f"the pipeline's {self.ops.component} already has a LoRA adapter; train on a fresh base pipeline")
        self.pipe, self.settings, self.device, self.world = pipe, settings, torch.device(device), world
        torch.manual_seed(settings.run.seed)  # LoRA dropout draws from the global generator: same start, same masks
        self.family = self.ops.family.name
        self.sdxl = self.family == "sdxl"
        self.provenance = dict(provenance or {})
        text_models = self.ops.text_models()
        for model in (denoiser, pipe.vae, *text_models.values()):
            model.requires_grad_(False)
        self.models = {self.ops.component: denoiser} | (text_models if settings.train_text_encoder else {})
        self.configs = {name: adapter_config(settings.rank, settings.alpha, settings.dropout,
                                             self.ops.targets() if model is denoiser else TEXT_TARGET_MODULES)
                        for name, model in self.models.items()}
        checkpointing = settings.gradient_checkpointing or settings.low_memory
        for offset, (name, model) in enumerate(self.models.items()):
            add_lora(model, self.configs[name], settings.run.seed + offset)
            cast_training_params(model, dtype=torch.float32)  # LoRA params fp32 even with bf16/fp16 weights
            if checkpointing:
                model.enable_gradient_checkpointing() if model is denoiser else model.gradient_checkpointing_enable()
        self.params = {name: trainable_parameters(model) for name, model in self.models.items()}
        if settings.init_lora:
            load_init(self.params, init_tensors(Path(settings.init_lora), self.family, settings.rank))
        te_lr = settings.text_encoder_lr or settings.learning_rate
        groups = [{"params": list(p.values()), "lr": settings.learning_rate if name == self.ops.component else te_lr}
                  for name, p in self.params.items()]
        kind = "adamw8bit" if settings.low_memory and bitsandbytes_available() else settings.optimizer
        self.optimizer = make_optimizer(groups, kind, settings.adam_weight_decay, self.device)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(settings.lr_scheduler, settings.lr_warmup_steps, settings.run.steps))
        self.scaler = grad_scaler(self.device, settings.run.mixed_precision)
        self.generator = torch.Generator(self.device).manual_seed(settings.run.seed)  # on the device: no host copies per step
        self.batches = self.ops.batches(examples, self.generator, class_paths)
        self.held_out = (self.ops.batches(held_out, torch.Generator(self.device), ())
                         if held_out and settings.validation_loss_every else None)
        self.ops.release_text_encoders(free=owns_pipeline)
        self.prior = bool(class_paths)
        self.metric_names = ("loss", "instance_loss", "prior_loss") if self.prior else ("loss",)
        self.images_per_step = settings.batch_size * settings.gradient_accumulation
        self.ema = {name: Ema(p, settings.ema_decay) for name, p in self.params.items()} if settings.ema_decay else {}
        self.steps_done = 0
        if settings.low_memory and settings.cache_latents and not settings.train_text_encoder:
            self._frozen_encoders("cpu")
        if settings.compile:
            denoiser.compile()
        denoiser.train()

    def step(self) -> torch.Tensor:
        accumulation = self.settings.gradient_accumulation
        total = torch.zeros(len(self.metric_names), device=self.device)
        for micro in range(accumulation):
            loss, parts = self._loss(self.batches(self.steps_done * accumulation + micro))
            self.scaler.scale(loss / accumulation).backward()
            total += parts.detach() / accumulation
        params = [p for group in self.params.values() for p in group.values()]
        self.world.average_gradients(params)
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(params, self.settings.max_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        for name, ema in self.ema.items():
            ema.update(self.params[name])
        self.steps_done += 1
        return total

    @torch.no_grad()
    def held_out_metrics(self, step: int) -> dict[str, float]:
        """val_loss: the mean loss over the held-out images, with the same noise and noise levels every time."""
        if self.held_out is None or step % self.settings.validation_loss_every:
            return {}
        generator = torch.Generator(self.device).manual_seed(self.settings.run.seed + 1)
        self.held_out.generator = generator  # latent samples and flips: the fixed draws too
        models = list(self.models.values())
        for model in models:
            model.eval()
        try:
            count = len(self.held_out.examples)
            steps = -(-count // self.settings.batch_size)
            losses = [self._loss(self.held_out(i), generator)[0] for i in range(steps)]  # owner rows only: no prior term
        finally:
            for model in models:
                model.train()
        return {"val_loss": float(torch.stack(losses).mean())}

    def _loss(self, batch: Batch, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        settings, latents = self.settings, batch.latents
        count = latents.shape[0]
        g, device = generator or self.generator, self.device
        noise = torch.randn(latents.shape, generator=g, device=device)
        if settings.noise_offset:
            noise += settings.noise_offset * torch.randn((count, latents.shape[1], 1, 1), generator=g, device=device)
        noise = noise.to(latents.dtype)
        timesteps = self.ops.timesteps(count, g)
        noisy, target = self.ops.noisy_and_target(latents, noise, timesteps)
        cond, weights, instance_rows = batch.cond, batch.weights, batch.instance
        if self.world.size > 1:  # every rank drew the global batch; each trains on its slice of owner and class rows
            mine = self.world.shard(torch.arange(batch.instance, device=device))
            rows = torch.cat([mine, batch.instance + self.world.shard(torch.arange(count - batch.instance, device=device))])
            noisy, timesteps, target, cond = noisy[rows], timesteps[rows], target[rows], cond.index(rows)
            weights, instance_rows = (None if weights is None else weights[mine]), len(mine)
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32):
            prediction = self.ops.predict(noisy, timesteps, cond)
        per_item = torch.cat([weighted_mse(prediction[:instance_rows], target[:instance_rows], weights),
                              weighted_mse(prediction[instance_rows:], target[instance_rows:], None)])
        if settings.snr_gamma is not None:
            per_item = per_item * self.ops.snr_weights(timesteps)
        instance = per_item[:instance_rows].mean()
        if not self.prior or instance_rows == len(per_item):
            return instance, instance.reshape(1)
        prior = per_item[instance_rows:].mean()
        loss = instance + settings.prior.loss_weight * prior
        return loss, torch.stack([loss, instance, prior])

    def _frozen_encoders(self, where: str | torch.device) -> None:
        """Move the VAE and frozen text encoders (low_memory: off the GPU once their outputs are cached)."""
        self.pipe.vae.to(where)
        for name in ("text_encoder", "text_encoder_2"):
            model = getattr(self.pipe, name, None)
            if model is not None and name not in self.models:
                model.to(where)

    def state_dict(self) -> dict[str, Any]:
        state = {"lora": {c: {n: p.detach().cpu().clone() for n, p in ps.items()} for c, ps in self.params.items()},
                 "ema": {c: {n: t.cpu().clone() for n, t in e.shadow.items()} for c, e in self.ema.items()},
                 "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                 "scaler": self.scaler.state_dict(), "generator": self.generator.get_state(),
                 "torch_rng": torch.get_rng_state(), "steps_done": self.steps_done, "sdxl": self.sdxl, "family": self.family,
                 "adapter": {c: json.dumps(config) for c, config in self.configs.items()}, "provenance": self.provenance}
        if self.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        with torch.no_grad():
            for component, params in self.params.items():
                for name, param in params.items():
                    param.copy_(state["lora"][component][name])
                if component in self.ema:
                    for name, shadow in self.ema[component].shadow.items():
                        shadow.copy_(state["ema"][component][name])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])  # LoRA dropout draws from the global generator
        if "cuda_rng" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)
        self.steps_done = int(state["steps_done"])

    def sample(self, folder: RunFolder, step: int) -> None:
        """Validation images (fixed prompts and seeds) as samples/step_<n>.png."""
        if self.settings.validation_prompts and self.settings.validation_seeds:
            self.validation(folder.samples / f"step_{step:07d}.png")

    def validation(self, path: Path) -> Path:
        from facecraft_pipeline.grids import make_grid

        settings = self.settings
        models = [m for m in self.models.values()]
        for model in models:
            model.eval()
        rng = torch.get_rng_state()
        if settings.low_memory:
            self._frozen_encoders(self.device)
        try:
            images = [image for prompt in settings.prompts() for seed in settings.validation_seeds
                      for image in self.ops.generate(prompt, seed, settings.validation_steps, settings.resolution)]
        finally:
            torch.set_rng_state(rng)
            if settings.low_memory and settings.cache_latents and not settings.train_text_encoder:
                self._frozen_encoders("cpu")
            for model in models:
                model.train()
        path.parent.mkdir(parents=True, exist_ok=True)
        make_grid(images, cols=max(1, len(settings.validation_seeds)), cell=min(256, settings.resolution)).save(path)
        return path

    def facts(self, folder: RunFolder) -> dict[str, Any]:
        """Peak GPU memory of the run (run.json), the figure the vram_gb presets are judged by."""
        if self.device.type != "cuda":
            return {}
        return {"peak_memory_gib": round(torch.cuda.max_memory_allocated(self.device) / 2**30, 2)}

    def finish(self, folder: RunFolder) -> dict[str, Path]:
        """The weights (the EMA when kept, also loaded into the pipeline), their kohya twin, a validation grid,
        and checkpoints/step-<n>/ LoRA files for every kept checkpoint (the evaluation sweep's)."""
        with torch.no_grad():
            for component, ema in self.ema.items():
                for name, param in self.params[component].items():
                    param.copy_(ema.shadow[name])
        self.ops.denoiser.eval()
        layers = {c: peft_layers(p) for c, p in self.params.items()}
        metadata = {**self.provenance, "ss_steps": str(self.steps_done), "facecraft.steps": str(self.steps_done)}
        artifacts = save_lora(folder.path, layers, self.configs, self.family, metadata)
        for checkpoint in Checkpoints(folder.checkpoints, keep_last=1).all():
            out = folder.checkpoints / f"step-{checkpoint.step}"
            if not (out / "pytorch_lora_weights.safetensors").is_file():
                checkpoint_weights(checkpoint.path, out)
        if self.settings.validation_prompts and self.settings.validation_seeds:
            artifacts["validation"] = self.validation(folder.path / "validation.png")
        for model in self.models.values():
            model.eval()  # the trained pipeline generates as the saved file does (no LoRA dropout)
        return artifacts


def _provenance(settings: LoraSettings, base: BaseModel, dataset_digest: str, key: str, images: int) -> dict[str, str]:
    """What the safetensors header says about the weights: facecraft.* keys and kohya's ss_* where they apply."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        code = version("facecraft_pipeline")
    except PackageNotFoundError:
        code = "unknown"
    te, spec = settings.train_text_encoder, family(base.family)
    values = {
        "facecraft.base_model": base.spec, "facecraft.base_model_location": base.location, "facecraft.family": base.family,
        "facecraft.trigger": settings.trigger, "facecraft.class_word": settings.class_word,
        "facecraft.instance_prompt": settings.instance_prompt, "facecraft.rank": settings.rank, "facecraft.alpha": settings.alpha,
        "facecraft.dataset_digest": dataset_digest, "facecraft.seed": settings.run.seed, "facecraft.run_key": key,
        "facecraft.code_version": f"{code}+recipe{RECIPE_VERSION}", "facecraft.resolution": settings.resolution,
        "ss_network_module": spec.network_module, "ss_network_dim": settings.rank, "ss_network_alpha": settings.alpha,
        "ss_network_dropout": settings.dropout, "ss_network_train_unet_only": not te,
        "ss_base_model_version": spec.kohya_version, "ss_sd_model_name": base.spec,
        "ss_resolution": f"({settings.resolution}, {settings.resolution})", "ss_seed": settings.run.seed,
        "ss_max_train_steps": settings.run.steps, "ss_learning_rate": settings.learning_rate,
        "ss_unet_lr": settings.learning_rate, "ss_text_encoder_lr": (settings.text_encoder_lr or settings.learning_rate) if te else 0,
        "ss_lr_scheduler": settings.lr_scheduler, "ss_lr_warmup_steps": settings.lr_warmup_steps,
        "ss_gradient_accumulation_steps": settings.gradient_accumulation, "ss_mixed_precision": settings.run.mixed_precision,
        "ss_min_snr_gamma": settings.snr_gamma, "ss_noise_offset": settings.noise_offset,
        "ss_prior_loss_weight": settings.prior.loss_weight, "ss_num_train_images": images,
        "ss_optimizer": settings.optimizer, "ss_output_name": f"facecraft-{settings.trigger}",
        "ss_training_comment": f"FaceCraft LoRA of '{settings.trigger} {settings.class_word}' on {base.spec}",
        "ss_v2": False, "ss_sd_scripts_commit_hash": "", "modelspec.sai_model_spec": "1.0.0",
        "modelspec.architecture": spec.architecture,
        "modelspec.implementation": "diffusers", "modelspec.title": f"facecraft-{settings.trigger}",
        "modelspec.trigger_phrase": settings.instance_prompt,
    }
    if spec.flow_matching:
        values |= {"ss_timestep_sampling": settings.timestep_sampling, "ss_sigmoid_scale": settings.logit_std,
                   "ss_discrete_flow_shift": settings.timestep_shift, "ss_guidance_scale": settings.guidance,
                   "facecraft.max_sequence_length": settings.max_sequence_length}
    return {k: "None" if v is None else str(v) for k, v in values.items()}


def _versions() -> dict[str, str]:
    import diffusers
    import peft

    return {"torch": torch.__version__, "diffusers": diffusers.__version__, "peft": peft.__version__}
