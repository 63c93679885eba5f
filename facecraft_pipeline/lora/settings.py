"""LoRA training settings; defaults are the small CPU demo (tiny model, 64 px, 100 steps)."""

from __future__ import annotations

from dataclasses import dataclass

from facecraft_pipeline.settings import nested, setting, validate
from facecraft_pipeline.training.settings import RunSettings


@dataclass(frozen=True)
class LoraSettings:
    """DreamBooth-style LoRA on the UNet, the diffusers example recipe (see train_dreambooth_lora.py)."""

    base_model: str = setting("tiny", "tiny (offline random SD: images are noise), a hub id, a local diffusers folder, or a .safetensors file")
    resolution: int = setting(64, "training side in px (512 for SD-1.5); a multiple of 8", minimum=8)
    rank: int = setting(4, "LoRA rank r", minimum=1)
    alpha: float = setting(4.0, "LoRA alpha: the update is scaled by alpha / rank", minimum=0, exclusive=True)
    batch_size: int = setting(4, "images per optimizer step", minimum=1)
    learning_rate: float = setting(1e-4, "AdamW learning rate of the LoRA parameters", minimum=0, exclusive=True)
    instance_prompt: str = setting("a photo of sks person", "caption of every training image (trigger token + class)")
    gradient_checkpointing: bool = setting(False, "recompute UNet activations in backward: less memory, slower", run_key=False)
    cache_latents: bool = setting(True, "encode images (and the prompt) once instead of every step", run_key=False)
    random_flip: bool = setting(False, "mirror training images at random (DreamBooth default: off)")
    snr_gamma: float | None = setting(None, "Min-SNR loss weighting gamma (5.0 is the paper's); empty: plain MSE", minimum=0, exclusive=True)
    noise_offset: float = setting(0.0, "offset noise strength (helps very dark / bright images)", minimum=0)
    max_grad_norm: float = setting(1.0, "gradient clipping norm", minimum=0, exclusive=True)
    adam_weight_decay: float = setting(1e-2, "AdamW weight decay", minimum=0)
    run: RunSettings = nested(RunSettings, "length, cadence, retention, seed and precision of the run",
                              steps=100, checkpoint_every=50, sample_every=0)

    def __post_init__(self) -> None:
        validate(self)
        if self.resolution % 8:
            raise ValueError(f"LoraSettings.resolution must be a multiple of 8, got {self.resolution}")
