"""LoRA training settings; defaults are the small CPU demo (tiny model, 64 px, 100 steps).

The `full` profile (profiles.py) turns on what helps a real SD-1.5 face LoRA: 512 px crops in
context, prior preservation, a face-weighted loss, Min-SNR, offset noise, cosine decay with warmup.
"""

from __future__ import annotations

from dataclasses import dataclass

from facecraft_pipeline.dataset.diffusion_crops import DiffusionCropSettings
from facecraft_pipeline.lora.families import NAMES
from facecraft_pipeline.lora.flow_matching import SAMPLINGS
from facecraft_pipeline.lora.memory import QUANTIZATIONS, VRAM_PRESETS
from facecraft_pipeline.settings import nested, setting, validate
from facecraft_pipeline.training.settings import RunSettings

LR_SCHEDULERS = ("constant", "cosine", "linear")
OPTIMIZERS = ("adamw", "adamw8bit")
FAMILIES = ("auto", *NAMES)
UNET_TARGETS = ("to_k", "to_q", "to_v", "to_out.0")


@dataclass(frozen=True)
class PriorSettings:
    """DreamBooth prior preservation: class images from the base model itself keep the class from drifting."""

    num_images: int = setting(0, "class images generated once by the base model and cached (0: no prior preservation)", minimum=0)
    loss_weight: float = setting(1.0, "weight of the class images' loss beside the owner's", minimum=0)
    prompt: str | None = setting(None, "prompt of the class images (default: 'photo of a <class_word>')")
    seed: int = setting(0, "first seed of the class images (image i uses seed + i)")
    inference_steps: int = setting(25, "sampling steps per class image", minimum=1)
    guidance_scale: float = setting(7.5, "classifier-free guidance of the class images", minimum=0)

    def __post_init__(self) -> None:
        validate(self)


@dataclass(frozen=True)
class LoraSettings:
    """DreamBooth-style LoRA (kohya / ai-toolkit recipe) on an SD 1.x/2.x or SDXL base."""

    base_model: str = setting("tiny", "tiny / tiny-sdxl / tiny-flux / tiny-zimage (offline random models: images are noise), "
                                      "a hub id, a local diffusers folder, or a single .safetensors/.ckpt file or URL (FLUX.1: "
                                      "the transformer)")
    base_components: str | None = setting(None, "a single-file FLUX.1 transformer: hub id or folder of the pipeline its VAE, "
                                                "text encoders and config come from (default FLUX.1-dev, or schnell without guidance)")
    model_family: str = setting("auto", "sd (1.x/2.x), sdxl, flux (FLUX.1 dev/schnell) or zimage (Z-Image); auto reads it "
                                        "from the model", choices=FAMILIES)
    resolution: int = setting(64, "training side in px (512 SD-1.5, 1024 SDXL, 512-1024 FLUX.1); a multiple of 8 "
                                  "(16 for flux and zimage)", minimum=8)
    trigger: str = setting("sks", "the token that stands for the owner in prompts")
    class_word: str = setting("person", "the class the owner belongs to (captions, class images)")
    data: DiffusionCropSettings = nested(DiffusionCropSettings, "how the training crops are cut from the photos and captioned")
    rank: int = setting(4, "LoRA rank r", minimum=1)
    alpha: float = setting(4.0, "LoRA alpha: the update is scaled by alpha / rank", minimum=0, exclusive=True)
    dropout: float = setting(0.0, "LoRA dropout", minimum=0, maximum=0.9)
    target_modules: tuple[str, ...] = setting(UNET_TARGETS, "modules that get a LoRA (UNet attention projections by default; "
                                                            "flux / zimage: with this default, attention and MLP of every "
                                                            "block)")
    init_lora: str | None = setting(None, "start from this LoRA file (one this trainer wrote: diffusers format, or kohya for "
                                          "flux) instead of zero; same family and rank")
    train_text_encoder: bool = setting(False, "also train a LoRA on the text encoder(s) (q/k/v/out projections)")
    text_encoder_lr: float | None = setting(None, "learning rate of the text-encoder LoRA (default: learning_rate)", minimum=0, exclusive=True)
    batch_size: int = setting(4, "images per micro-batch", minimum=1)
    gradient_accumulation: int = setting(1, "micro-batches per optimizer step", minimum=1)
    learning_rate: float = setting(1e-4, "learning rate of the LoRA parameters", minimum=0, exclusive=True)
    lr_scheduler: str = setting("constant", "learning-rate schedule after warmup", choices=LR_SCHEDULERS)
    lr_warmup_steps: int = setting(0, "steps of linear warmup from 0", minimum=0)
    optimizer: str = setting("adamw", "adamw (fused on CUDA) or adamw8bit (needs bitsandbytes)", choices=OPTIMIZERS)
    adam_weight_decay: float = setting(1e-2, "AdamW weight decay", minimum=0)
    max_grad_norm: float = setting(1.0, "gradient clipping norm", minimum=0, exclusive=True)
    snr_gamma: float | None = setting(None, "Min-SNR loss weighting gamma (5.0 is the paper's); empty: plain MSE (DDPM families)",
                                      minimum=0, exclusive=True)
    timestep_sampling: str = setting("logit_normal", "flow-matching families (flux, zimage): how the noise level is drawn: logit_normal "
                                                     "(SD3/FLUX recipe, most draws mid-way) or uniform", choices=SAMPLINGS)
    logit_mean: float = setting(0.0, "flow matching: mean of the logit-normal noise level (> 0: noisier)")
    logit_std: float = setting(1.0, "flow matching: spread of the logit-normal noise level", minimum=0, exclusive=True)
    timestep_shift: float = setting(1.0, "flow matching: shift noise levels towards noise, s*t/(1+(s-1)*t) (1: none; 3.0 "
                                         "as kohya's discrete_flow_shift)", minimum=0, exclusive=True)
    guidance: float = setting(1.0, "flow matching: the guidance embedding while training guidance-distilled models "
                                   "(FLUX.1-dev; 1.0 as kohya / ai-toolkit, diffusers' example uses 3.5)", minimum=0)
    max_sequence_length: int = setting(512, "flux / zimage: text tokens per caption (T5: 512 FLUX.1-dev, 256 schnell; Qwen3)",
                                       minimum=1, maximum=512)
    noise_offset: float = setting(0.0, "offset noise strength (helps very dark / bright images)", minimum=0)
    face_loss_strength: float = setting(0.0, "weight the loss towards the face: 0 plain MSE, 1 only the face region counts",
                                        minimum=0, maximum=1)
    face_mask_grow: float = setting(1.3, "the face region is the face box grown by this factor (a soft ellipse)", minimum=1)
    mask_other_faces: bool = setting(True, "leave other people's faces in a training crop (the crops manifest's boxes, grown "
                                           "as the owner's) out of the loss, so the LoRA does not learn them as the owner")
    ema_decay: float = setting(0.0, "EMA of the LoRA weights (0: off; e.g. 0.999); the saved file holds the EMA", minimum=0, maximum=0.99999)
    random_flip: bool = setting(False, "mirror training images at random (captions swap left/right)")
    prior: PriorSettings = nested(PriorSettings, "DreamBooth prior preservation with cached class images")
    validation_prompts: tuple[str, ...] = setting(("photo of {trigger} {class_word}",),
                                                  "prompts of the validation images drawn at each sample step and at the end (empty: none)")
    validation_seeds: tuple[int, ...] = setting((0,), "seeds of the validation images (one image per prompt and seed)")
    validation_loss_every: int = setting(0, "every N steps (a multiple of run.log_every), the loss on the held-out images "
                                            "(fixed noise) beside the training loss as val_loss (0: off)", minimum=0, run_key=False)
    validation_steps: int = setting(8, "sampling steps of the validation images", minimum=1, run_key=False)
    gradient_checkpointing: bool = setting(False, "recompute UNet activations in backward: less memory, slower", run_key=False)
    cache_latents: bool = setting(True, "encode images (and their mirrors) once, and the captions once when the text "
                                        "encoders are frozen", run_key=False)
    low_memory: bool = setting(False, "SD-1.5 at 512 px in 6 GiB: gradient checkpointing, frozen encoders off the GPU "
                                      "after caching, 8-bit AdamW when bitsandbytes is installed; use batch_size 1")
    quantize_base: str = setting("none", "load the frozen denoiser quantized (CUDA only): nf4 (bitsandbytes, QLoRA) or float8 "
                                         "(torchao, Ada/Hopper GPUs); the LoRA itself trains in fp32", choices=QUANTIZATIONS)
    vram_gb: int | None = setting(None, "preset for a card with this much memory: 12, 16 or 24 GiB turns on quantization, "
                                        "gradient checkpointing, 8-bit AdamW, batch 1 as the family needs (see lora/memory.py)",
                                  choices=(None, *VRAM_PRESETS))
    compile: bool = setting(False, "torch.compile the UNet (minutes to compile; pays off on long GPU runs)", run_key=False)
    allow_tf32: bool = setting(True, "TF32 matmuls on Ampere+ GPUs", run_key=False)
    run: RunSettings = nested(RunSettings, "length, cadence, retention, seed and precision of the run",
                              steps=100, checkpoint_every=50, sample_every=0)

    def __post_init__(self) -> None:
        validate(self)
        if self.resolution % 8:
            raise ValueError(f"LoraSettings.resolution must be a multiple of 8, got {self.resolution}")

    @property
    def instance_prompt(self) -> str:
        """The plain caption (used when an image has no caption of its own)."""
        return f"photo of {self.trigger} {self.class_word}"

    @property
    def class_prompt(self) -> str:
        return self.prior.prompt or f"photo of a {self.class_word}"

    def prompts(self) -> list[str]:
        return [p.format(trigger=self.trigger, class_word=self.class_word) for p in self.validation_prompts]
