"""LoRA training settings and results; defaults are the small CPU demo (tiny model, 64 px, 100 steps)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from facecraft_pipeline.lora.base_model import BaseModel

MIXED_PRECISION = ("no", "bf16", "fp16")


@dataclass(frozen=True)
class LoraSettings:
    """DreamBooth-style LoRA on the UNet, the diffusers example recipe (see train_dreambooth_lora.py)."""

    base_model: str = "tiny"  # "tiny", a hub id, a local diffusers folder, or a .safetensors/.ckpt file/URL
    resolution: int = 64  # 512 for SD-1.5
    rank: int = 4
    alpha: float = 4.0  # LoRA scale is alpha / rank
    steps: int = 100
    batch_size: int = 4
    learning_rate: float = 1e-4
    instance_prompt: str = "a photo of sks person"
    seed: int = 0
    checkpoint_every: int = 50  # steps between resumable checkpoints; 0 = none
    checkpoints_to_keep: int = 2
    log_every: int = 10  # steps between on_metrics calls
    mixed_precision: str = "no"  # "no" | "bf16" | "fp16": frozen weights in that dtype, LoRA params fp32
    gradient_checkpointing: bool = False
    cache_latents: bool = True  # encode images with the VAE and the prompt once, not every step
    random_flip: bool = False  # DreamBooth default: off (a mirrored face is a slightly different face)
    snr_gamma: float | None = None  # Min-SNR loss weighting (5.0 is the paper's value); None = plain MSE
    noise_offset: float = 0.0
    max_grad_norm: float = 1.0
    adam_weight_decay: float = 1e-2

    def __post_init__(self) -> None:
        if self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(f"mixed_precision must be one of {MIXED_PRECISION}, not {self.mixed_precision!r}")
        if self.resolution <= 0 or self.resolution % 8:
            raise ValueError(f"resolution must be a positive multiple of 8, not {self.resolution}")
        for name in ("rank", "steps", "batch_size", "log_every", "checkpoints_to_keep"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.checkpoint_every < 0:
            raise ValueError("checkpoint_every must be >= 0 (0 = no intermediate checkpoints)")
        if self.learning_rate <= 0 or self.alpha <= 0:
            raise ValueError("learning_rate and alpha must be positive")


@dataclass(frozen=True)
class LoraTrainResult:
    """What `train_lora` produced and how; for a reused run, the facts recorded by the run that trained it."""

    weights_dir: Path
    weights_file: Path
    base_model: BaseModel
    steps: int
    resumed_from: int  # 0 = trained from scratch
    reused: bool  # True = an identical completed run was found and nothing was trained
    final_loss: float  # mean loss over the last logging window
    device: str
    dtype: str  # dtype of the frozen weights; LoRA params are always float32
    seconds: float  # training wall time (this call's, or the recorded one when reused)
    images_per_second: float
