"""What the sweep evaluates: one `Candidate` per kept checkpoint, and how each draws its images.

Every checkpoint of every model draws with the same seeds (GAN latents from `seed`; diffusion
image i of every prompt from noise seed `seed + i`), so checkpoints differ only by their weights.
A renderer loads what it needs lazily: when every checkpoint is cached, nothing is loaded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from PIL import Image

from facecraft_pipeline.digest import sha256_file
from facecraft_pipeline.evaluation.settings import GallerySettings
from facecraft_pipeline.training import TrainResult

Drawn = tuple[int | None, int, Image.Image]  # (prompt index or None, image index, image)


class Renderer(Protocol):
    kind: str  # "gan" | "diffusion"

    def render_settings(self, settings: GallerySettings) -> dict[str, Any]:
        """The settings (and facts, e.g. the resolved prompts) that decide the images: part of the cache key."""

    def render(self, candidate: Candidate, settings: GallerySettings) -> list[Drawn]: ...


@dataclass(frozen=True)
class Candidate:
    model: str
    step: int
    path: Path  # the checkpoint file scored
    digest: str  # of the weights (+ what else decides the images, e.g. the LoRA's base model)
    renderer: Renderer = field(compare=False, repr=False)
    run_folder: Path | None = None
    note: str = ""

    @property
    def kind(self) -> str:
        return self.renderer.kind


class GanRenderer:
    """A GAN checkpoint's generator (EMA weights when present), `samples_per_model` latents from `seed`."""

    kind = "gan"

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = device

    def render_settings(self, settings: GallerySettings) -> dict[str, Any]:
        return {"samples": settings.samples_per_model, "seed": settings.seed}

    def render(self, candidate: Candidate, settings: GallerySettings) -> list[Drawn]:
        from facecraft_pipeline.gan import load_generator, sample_images

        generator = load_generator(candidate.path, self.device)
        images = sample_images(generator, settings.samples_per_model, settings.seed, self.device)
        return [(None, i, image) for i, image in enumerate(images)]


_SCHEDULER_CLASSES = {"ddim": "DDIMScheduler", "euler": "EulerDiscreteScheduler", "euler_a": "EulerAncestralDiscreteScheduler",
               "dpm++": "DPMSolverMultistepScheduler", "pndm": "PNDMScheduler"}


def load_lora_checkpoint(unet: torch.nn.Module, path: Path) -> None:
    """Put the LoRA parameters of a kept training checkpoint (state["lora"]) into `unet`.

    The adapter is added the way the trainer added it (`lora.adapter.add_unet_lora` on a frozen
    UNet, so the parameter names match), once per UNet; later calls only copy the values.
    """
    from facecraft_pipeline.lora.adapter import add_unet_lora, trainable_parameters
    from facecraft_pipeline.training.checkpoints import read_state

    state = read_state(path)
    config = state["lora_config"]
    if not getattr(unet, "peft_config", None):
        unet.requires_grad_(False)
        add_unet_lora(unet, int(config["r"]), float(config["lora_alpha"]), seed=0)
    params = trainable_parameters(unet) or {n: p for n, p in unet.named_parameters() if "lora_" in n}
    if set(params) != set(state["lora"]):
        raise ValueError(f"{path}: its LoRA tensors do not match the adapter ({len(state['lora'])} vs {len(params)} names)")
    with torch.no_grad():
        for name, param in params.items():
            param.copy_(state["lora"][name].to(param.device, param.dtype))
    unet.eval()


class LoraRenderer:
    """The base pipeline, loaded once, with each kept checkpoint's LoRA parameters swapped in."""

    kind = "diffusion"

    def __init__(self, base: Any, instance_prompt: str, train_resolution: int, device: torch.device | str = "cpu") -> None:
        from facecraft_pipeline.lora.families import family

        self.base, self.instance_prompt, self.train_resolution, self.device = base, instance_prompt, train_resolution, device
        self.family = family(base.family)  # its sampler defaults
        self._pipe = None

    def render_settings(self, settings: GallerySettings) -> dict[str, Any]:
        return {"prompts": list(settings.resolved_prompts(self.instance_prompt)), "negative_prompt": settings.negative_prompt,
                "guidance_scale": self.guidance(settings), "steps": self.steps(settings), "scheduler": settings.scheduler,
                "images_per_prompt": settings.images_per_prompt, "seed": settings.seed,
                "resolution": settings.resolution or self.train_resolution, "base_model": self.base.spec}

    def guidance(self, settings: GallerySettings) -> float:
        return settings.guidance_scale if settings.guidance_scale is not None else self.family.sample_guidance

    def steps(self, settings: GallerySettings) -> int:
        return settings.num_inference_steps or self.family.sample_steps

    def pipe(self):
        if self._pipe is None:
            from facecraft_pipeline.lora import load_pipeline

            self._pipe = load_pipeline(self.base, self.device)
            self._default_scheduler = self._pipe.scheduler
        return self._pipe

    def apply(self, pipe: Any, candidate: Candidate) -> None:
        """Make the candidate's LoRA the active one: the loadable LoRA the trainer wrote beside the checkpoint
        (`checkpoints/step-<n>/`, or written now with `lora.checkpoint_weights`) when the LoRA package offers
        it, else the checkpoint's tensors copied into the adapter (`load_lora_checkpoint`)."""
        from facecraft_pipeline import lora

        folder = candidate.path.parent / f"step-{candidate.step}"
        writer = getattr(lora, "checkpoint_weights", None)
        if not (folder / lora.WEIGHTS_NAME).is_file() and writer is not None:
            import tempfile

            folder = Path(tempfile.mkdtemp(prefix="lora-step-"))
            writer(candidate.path, folder)
        if (folder / lora.WEIGHTS_NAME).is_file():
            pipe.unload_lora_weights()
            pipe.load_lora_weights(str(folder))
        else:
            load_lora_checkpoint(pipe.unet, candidate.path)

    def render(self, candidate: Candidate, settings: GallerySettings) -> list[Drawn]:
        pipe = self.pipe()
        self.apply(pipe, candidate)
        if settings.scheduler == "default":
            pipe.scheduler = self._default_scheduler
        elif self.family.flow_matching:
            raise ValueError(f"GallerySettings.scheduler {settings.scheduler!r} is a DDPM sampler; {self.family.name} samples "
                             "with its own flow-matching scheduler: set it to default")
        else:
            import diffusers

            pipe.scheduler = getattr(diffusers, _SCHEDULER_CLASSES[settings.scheduler]).from_config(self._default_scheduler.config)
        size = settings.resolution or self.train_resolution
        drawn: list[Drawn] = []
        for number, prompt in enumerate(settings.resolved_prompts(self.instance_prompt)):
            images = draw(pipe, prompt, settings.negative_prompt, settings.images_per_prompt, settings.seed,
                          self.steps(settings), self.guidance(settings), size)
            drawn += [(number, i, image) for i, image in enumerate(images)]
        return drawn


@torch.no_grad()
def draw(pipe: Any, prompt: str, negative_prompt: str, n: int, seed: int, steps: int, guidance: float, size: int,
         batch_size: int = 8) -> list[Image.Image]:
    """n images; image i starts from the CPU noise of seed + i (the same on any device, whatever the batch)."""
    images: list[Image.Image] = []
    for first in range(0, n, batch_size):
        count = min(batch_size, n - first)
        out = pipe([prompt] * count, negative_prompt=[negative_prompt] * count if negative_prompt else None,
                   num_inference_steps=steps, guidance_scale=guidance, height=size, width=size,
                   generator=[torch.Generator().manual_seed(seed + first + i) for i in range(count)])
        images.extend(out.images)
    return images


class FixedImages:
    """Images given up front, as if generated (real photos or crops: tests, and a baseline by eye)."""

    def __init__(self, images: Sequence[Image.Image], kind: str = "gan", prompts: Sequence[int | None] | None = None) -> None:
        self.images, self.kind = list(images), kind
        self.prompts = list(prompts) if prompts is not None else [None if kind == "gan" else 0] * len(self.images)
        self.calls = 0

    def render_settings(self, settings: GallerySettings) -> dict[str, Any]:
        return {"fixed": len(self.images)}

    def render(self, candidate: Candidate, settings: GallerySettings) -> list[Drawn]:
        self.calls += 1
        counters: dict[int | None, int] = {}
        drawn = []
        for prompt, image in zip(self.prompts, self.images, strict=True):
            counters[prompt] = counters.get(prompt, -1) + 1
            drawn.append((prompt, counters[prompt], image))
        return drawn


def gan_candidates(model: str, result: TrainResult, device: torch.device | str = "cpu") -> list[Candidate]:
    """Every kept checkpoint of a GAN run (each loads with `gan.load_generator`)."""
    renderer = GanRenderer(device)
    kind = result.info.settings.get("kind", model)
    return [Candidate(model, step, Path(path), sha256_file(Path(path)), renderer, result.folder, f"{kind}, step {step}")
            for step, path in result.checkpoints]


def lora_candidates(model: str, result: TrainResult, device: torch.device | str = "cpu") -> list[Candidate]:
    """Every kept checkpoint of a LoRA run, on the base model it trained on."""
    from facecraft_pipeline.lora import LoraSettings, base_model_of

    base = base_model_of(result)
    settings = result.info.settings
    renderer = LoraRenderer(base, settings.get("instance_prompt") or LoraSettings().instance_prompt,
                            int(settings.get("resolution") or LoraSettings().resolution), device)
    out = []
    for step, path in result.checkpoints:
        digest = hashlib.sha256(f"{sha256_file(Path(path))} {base.spec} {base.location}".encode()).hexdigest()
        out.append(Candidate(model, step, Path(path), digest, renderer, result.folder, f"LoRA step {step} on {base.description}"))
    return out
