"""Random-weight models at real (or, for --quick, tiny) shapes, built straight on the device: nothing downloaded.

Construction runs under torch's default device and dtype, so a 12 B-parameter FLUX.1 transformer is
initialised on the GPU in bf16 (24 GB, about a second) instead of in fp32 on the CPU and copied.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import torch

from facecraft_pipeline.lora.tiny_sd import _byte_tokenizer

# SDXL base 1.0's UNet, VAE and two text encoders (CLIP-L, OpenCLIP bigG); "narrow" keeps the layout, tiny widths.
SDXL_SHAPES = {
    "sdxl": {"unet": (320, 640, 1280), "heads": (5, 10, 20), "layers": (1, 2, 10), "time_dim": 256,
             "vae": (128, 256, 512, 512), "te": (768, 12, 12, 3072), "te2": (1280, 32, 20, 5120)},
    "narrow": {"unet": (32, 64, 64), "heads": (2, 4, 4), "layers": (1, 1, 1), "time_dim": 8,
               "vae": (32, 32, 64, 64), "te": (32, 2, 4, 64), "te2": (64, 2, 4, 128)},
}
# FLUX.1-dev's transformer (19 double + 38 single blocks, 3072 wide) and 16-channel VAE; "tiny" as in STACK.md.
FLUX_SHAPES = {
    "flux": {"transformer": {"patch_size": 1, "in_channels": 64, "num_layers": 19, "num_single_layers": 38,
                             "attention_head_dim": 128, "num_attention_heads": 24, "joint_attention_dim": 4096,
                             "pooled_projection_dim": 768, "guidance_embeds": True, "axes_dims_rope": (16, 56, 56)},
             "vae": {"block_out_channels": (128, 256, 512, 512), "latent_channels": 16, "norm_num_groups": 32},
             "text_tokens": 512},
    "tiny": {"transformer": {"patch_size": 1, "in_channels": 16, "num_layers": 1, "num_single_layers": 1,
                             "attention_head_dim": 16, "num_attention_heads": 2, "joint_attention_dim": 32,
                             "pooled_projection_dim": 32, "guidance_embeds": True, "axes_dims_rope": (4, 6, 6)},
             "vae": {"block_out_channels": (32, 64), "latent_channels": 4, "norm_num_groups": 8},
             "text_tokens": 16},
}


@contextlib.contextmanager
def building_on(device: torch.device, dtype: torch.dtype) -> Iterator[None]:
    """Modules created inside get their parameters on `device` in `dtype` (and a fixed seed)."""
    previous = torch.get_default_dtype()
    torch.manual_seed(0)
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(previous)


def config_folder(pipe, folder: Path) -> str:
    """A folder holding the pipeline's model_index.json only: enough for `resolve_base_model` (the weights stay in memory)."""
    folder.mkdir(parents=True, exist_ok=True)
    pipe.save_config(folder)
    return str(folder)


def build_sdxl_pipeline(shape: str, tokenizer_dir: Path):
    """An SDXL-shaped StableDiffusionXLPipeline with random weights, built where torch's default device and dtype say."""
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    s = SDXL_SHAPES[shape]
    te_hidden, te2_hidden = s["te"][0], s["te2"][0]
    unet = UNet2DConditionModel(
        sample_size=128, block_out_channels=s["unet"], layers_per_block=2, attention_head_dim=s["heads"],
        transformer_layers_per_block=s["layers"], use_linear_projection=True, cross_attention_dim=te_hidden + te2_hidden,
        addition_embed_type="text_time", addition_time_embed_dim=s["time_dim"],
        projection_class_embeddings_input_dim=te2_hidden + 6 * s["time_dim"],
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"))
    vae = AutoencoderKL(block_out_channels=s["vae"], layers_per_block=2, latent_channels=4, norm_num_groups=32, scaling_factor=0.13025,
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)

    def clip(hidden: int, layers: int, heads: int, inner: int, act: str) -> CLIPTextConfig:
        return CLIPTextConfig(vocab_size=514, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                              intermediate_size=inner, projection_dim=hidden, hidden_act=act, max_position_embeddings=77,
                              bos_token_id=512, eos_token_id=513, pad_token_id=513)

    text = CLIPTextModel(clip(*s["te"], "quick_gelu"))
    text_2 = CLIPTextModelWithProjection(clip(*s["te2"], "gelu"))
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
                                       steps_offset=1, timestep_spacing="leading")
    tokenizer = _byte_tokenizer(tokenizer_dir)
    return StableDiffusionXLPipeline(vae=vae, text_encoder=text, text_encoder_2=text_2, tokenizer=tokenizer, tokenizer_2=tokenizer,
                                     unet=unet, scheduler=scheduler)


def build_flux(shape: str):
    """(transformer, vae, text_tokens) of FLUX.1's shapes with random weights; the text encoders are not needed
    (the example loop encodes the prompt once: random embeddings of T5's and CLIP's sizes stand in for it)."""
    from diffusers import AutoencoderKL, FluxTransformer2DModel

    s = FLUX_SHAPES[shape]
    transformer = FluxTransformer2DModel(**{**s["transformer"], "axes_dims_rope": list(s["transformer"]["axes_dims_rope"])})
    blocks = len(s["vae"]["block_out_channels"])
    vae = AutoencoderKL(**s["vae"], layers_per_block=2, scaling_factor=0.3611, shift_factor=0.1159, use_quant_conv=False,
                        use_post_quant_conv=False, down_block_types=("DownEncoderBlock2D",) * blocks,
                        up_block_types=("UpDecoderBlock2D",) * blocks)
    return transformer, vae, s["text_tokens"]


def to_nf4(model: torch.nn.Module, compute_dtype: torch.dtype) -> int:
    """Replace every nn.Linear inside the transformer blocks by bitsandbytes' NF4 Linear4bit (QLoRA's base); returns how many."""
    import bitsandbytes as bnb

    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is torch.nn.Linear:
                quantized = bnb.nn.Linear4bit(child.in_features, child.out_features, bias=child.bias is not None,
                                              compute_dtype=compute_dtype, quant_type="nf4", device=child.weight.device)
                quantized.weight = bnb.nn.Params4bit(child.weight.data, requires_grad=False, quant_type="nf4")
                if child.bias is not None:
                    quantized.bias = torch.nn.Parameter(child.bias.data, requires_grad=False)
                setattr(parent, name, quantized.to(child.weight.device))  # moving to CUDA quantizes
                replaced += 1
    return replaced
