"""A tiny random FLUX.1-architecture pipeline, built locally and offline.

Every block of FLUX.1 is there (19 double-stream and 38 single-stream transformer blocks, the
guidance embedder of FLUX.1-dev, a 4-level 16-channel VAE with its scaling and shift factors,
CLIP-L for the pooled vector and T5 for the token sequence, the flow-matching Euler scheduler with
FLUX.1-dev's config) but with a few channels each: it goes through exactly the
`FluxPipeline.from_pretrained(folder)` path a downloaded FLUX.1 takes, and its images are noise.
"""

from __future__ import annotations

from pathlib import Path

import torch

from facecraft_pipeline.lora.tiny_sd import _byte_tokenizer, build_tiny

TINY_FLUX = "tiny-flux"
TINY_FLUX_DESCRIPTION = "tiny random FLUX.1 base model: images are noise"
DOUBLE_BLOCKS, SINGLE_BLOCKS = 19, 38  # FLUX.1's own counts


def build_tiny_flux(folder: Path, seed: int = 0) -> Path:
    """Save a tiny random FluxPipeline to `folder` (reused when already built with `seed`)."""
    return build_tiny(folder, seed, "flux", _tiny_flux_pipeline, TINY_FLUX_DESCRIPTION, "FLUX.1-dev")


def _tiny_flux_pipeline(tokenizer_dir: Path, seed: int):
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        transformer = FluxTransformer2DModel(  # rope axes must sum to the head dim (FLUX.1: 16+56+56 = 128)
            patch_size=1, in_channels=64, num_layers=DOUBLE_BLOCKS, num_single_layers=SINGLE_BLOCKS, attention_head_dim=16,
            num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32, axes_dims_rope=(4, 6, 6),
            guidance_embeds=True)
        vae = AutoencoderKL(  # FLUX.1's VAE layout (4 levels: 8x down, 16 latent channels), few channels
            in_channels=3, out_channels=3, block_out_channels=(8, 8, 16, 16), layers_per_block=1, latent_channels=16,
            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=8,
            use_quant_conv=False, use_post_quant_conv=False, scaling_factor=0.3611, shift_factor=0.1159, sample_size=64)
        text_encoder = CLIPTextModel(CLIPTextConfig(
            vocab_size=514, hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
            max_position_embeddings=77, projection_dim=32, bos_token_id=512, eos_token_id=513, pad_token_id=513))
        text_encoder_2 = T5EncoderModel(T5Config(
            vocab_size=514, d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4, relative_attention_num_buckets=8,
            pad_token_id=513, eos_token_id=513, decoder_start_token_id=0))
    scheduler = FlowMatchEulerDiscreteScheduler(  # FLUX.1-dev's scheduler config
        num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
        base_image_seq_len=256, max_image_seq_len=4096)
    tokenizer = _byte_tokenizer(tokenizer_dir)  # CLIP-style byte tokenizer for both slots (T5's vocab files are not shipped)
    return FluxPipeline(scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                        text_encoder_2=text_encoder_2, tokenizer_2=tokenizer, transformer=transformer)
