"""A tiny random Z-Image pipeline (Tongyi-MAI's Apache-2.0 single-stream DiT), built locally and offline.

The real layout with few channels: 30 single-stream transformer layers plus 2 noise- and 2
context-refiner layers, 2x2 patches, 3-axis RoPE, the 16-channel FLUX.1-style VAE, a Qwen3 text
encoder whose second-to-last hidden states condition the model, the chat-template prompt and
Z-Image-Turbo's flow-matching scheduler (shift 3). Loaded through `ZImagePipeline.from_pretrained(folder)`
as a downloaded Z-Image is; its images are noise.
"""

from __future__ import annotations

from pathlib import Path

import torch

from facecraft_pipeline.lora.tiny_sd import _byte_tokenizer, build_tiny

TINY_ZIMAGE = "tiny-zimage"
TINY_ZIMAGE_DESCRIPTION = "tiny random Z-Image base model: images are noise"
CHAT_TEMPLATE = "{% for message in messages %}{{ message['content'] }}{% endfor %}"  # Qwen3's, without its special tokens


def build_tiny_zimage(folder: Path, seed: int = 0) -> Path:
    """Save a tiny random ZImagePipeline to `folder` (reused when already built with `seed`)."""
    return build_tiny(folder, seed, "zimage", _tiny_zimage_pipeline, TINY_ZIMAGE_DESCRIPTION, "Z-Image-Turbo")


def _tiny_zimage_pipeline(tokenizer_dir: Path, seed: int):
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, ZImagePipeline, ZImageTransformer2DModel
    from transformers import Qwen3Config, Qwen3Model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        transformer = ZImageTransformer2DModel(  # rope axes sum to the head dim (Z-Image: 32+48+48 = 128 = 3840 / 30)
            all_patch_size=(2,), all_f_patch_size=(1,), in_channels=16, dim=32, n_layers=30, n_refiner_layers=2, n_heads=2,
            n_kv_heads=2, cap_feat_dim=32, axes_dims=[4, 6, 6], axes_lens=[1024, 512, 512])
        vae = AutoencoderKL(
            in_channels=3, out_channels=3, block_out_channels=(8, 8, 16, 16), layers_per_block=1, latent_channels=16,
            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=8,
            use_quant_conv=False, use_post_quant_conv=False, scaling_factor=0.3611, shift_factor=0.1159, sample_size=64)
        text_encoder = Qwen3Model(Qwen3Config(
            vocab_size=514, hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=2,
            num_key_value_heads=2, head_dim=16, max_position_embeddings=512, pad_token_id=513))
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=False)
    tokenizer = _byte_tokenizer(tokenizer_dir)
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.model_max_length = 512
    return ZImagePipeline(scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, transformer=transformer)
