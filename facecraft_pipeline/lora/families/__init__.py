"""The base-model families the LoRA trainer knows, as data: what each one loads as, trains and writes.

One `Family` per name; the code that differs per family (noise and target, the denoiser's call,
prompt encoding, files) lives in `families.sd`, `.flux` and `.zimage`, picked by `families.ops.ops_for`.
This module imports nothing of the project: base_model, adapter and settings checks all read it.
"""

from __future__ import annotations

from dataclasses import dataclass

ZIMAGE_TARGETS = (  # attention and MLP of every main and refiner layer
    r"^(layers|noise_refiner|context_refiner)\.\d+\.(attention\.(to_q|to_k|to_v|to_out\.0)|feed_forward\.(w1|w2|w3))$"
)
FLUX_TARGETS = (  # every attention projection and MLP layer of every double- and single-stream block
    r"^(transformer_blocks|single_transformer_blocks)\.\d+\.(attn\.(to_q|to_k|to_v|to_out\.0|add_q_proj|add_k_proj|"
    r"add_v_proj|to_add_out)|ff\.net\.0\.proj|ff\.net\.2|ff_context\.net\.0\.proj|ff_context\.net\.2|proj_mlp|proj_out)$"
)


@dataclass(frozen=True)
class Family:
    name: str
    pipeline: str  # the diffusers pipeline class
    denoiser: str  # the pipeline component that gets the LoRA
    flow_matching: bool  # rectified flow (noise - x0 target, sigma in [0, 1]) instead of DDPM noise/v prediction
    resolution_multiple: int  # VAE downsampling x latent packing
    kohya_version: str  # ss_base_model_version
    architecture: str  # modelspec.sai_model_spec architecture of the LoRA
    network_module: str  # ss_network_module (the kohya module that reads the file)
    sample_steps: int  # sampler defaults of the family (the evaluation sweep's, unless it sets its own)
    sample_guidance: float
    default_targets: str | None = None  # peft target_modules (regex) when the settings keep the UNet default


FAMILIES = {
    "sd": Family("sd", "StableDiffusionPipeline", "unet", False, 8, "sd_v1", "stable-diffusion-v1/lora", "networks.lora",
                 sample_steps=10, sample_guidance=5.0),
    "sdxl": Family("sdxl", "StableDiffusionXLPipeline", "unet", False, 8, "sdxl_base_v1-0", "stable-diffusion-xl-v1-base/lora",
                   "networks.lora", sample_steps=10, sample_guidance=5.0),
    "flux": Family("flux", "FluxPipeline", "transformer", True, 16, "flux1", "flux-1-dev/lora", "networks.lora_flux",
                   sample_steps=28, sample_guidance=3.5, default_targets=FLUX_TARGETS),
    "zimage": Family("zimage", "ZImagePipeline", "transformer", True, 16, "z_image", "z-image/lora", "networks.lora_zimage",
                     sample_steps=9, sample_guidance=0.0, default_targets=ZIMAGE_TARGETS),  # Z-Image-Turbo: 9 steps, no CFG
}
NAMES = tuple(FAMILIES)


def family(name: str) -> Family:
    if name not in FAMILIES:
        raise ValueError(f"model_family must be one of {', '.join(NAMES)}, got {name!r}")
    return FAMILIES[name]


def check_settings(settings, name: str) -> None:
    """Refuse, in one sentence naming the setting, what the family cannot train (before any weights load)."""
    spec = family(name)
    if settings.resolution % spec.resolution_multiple:
        raise ValueError(f"LoraSettings.resolution must be a multiple of {spec.resolution_multiple} for {name} "
                         f"(VAE downsampling and latent packing), got {settings.resolution}")
    if spec.flow_matching and settings.snr_gamma is not None:
        raise ValueError(f"LoraSettings.snr_gamma (Min-SNR) applies to DDPM families only, not {name}: leave it empty")
    if spec.flow_matching and settings.train_text_encoder:
        raise ValueError(f"LoraSettings.train_text_encoder is not supported for {name} (its text encoders are frozen "
                         "and freed after the captions are encoded): set it to false")
