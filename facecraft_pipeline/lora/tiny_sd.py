"""Tiny random Stable Diffusion pipelines (SD-1.5-shaped and SDXL-shaped), built locally and offline.

They have the real component types and folder layout (SDXL: two text encoders, size/crop
conditioning), so they go through exactly the `from_pretrained(folder)` path a downloaded model
takes; their weights are random, so their images are noise. Built once per folder, deterministic
per seed.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # diffusers/transformers load lazily: importing this package stays cheap for Dagster
    from diffusers import StableDiffusionPipeline
    from transformers import CLIPTokenizer

TINY = "tiny"
TINY_XL = "tiny-sdxl"
TINY_DESCRIPTION = "tiny random base model: images are noise"
TINY_XL_DESCRIPTION = "tiny random SDXL base model: images are noise"
MARKER_FILE = "facecraft_tiny_sd.json"


def is_tiny_sd_folder(folder: Path) -> bool:
    """True when `folder` holds a pipeline built by `build_tiny_sd` (so its output is noise)."""
    return (folder / MARKER_FILE).is_file() and (folder / "model_index.json").is_file()


def build_tiny_sd(folder: Path, seed: int = 0) -> Path:
    """Save a tiny random StableDiffusionPipeline to `folder` (reused when already built with `seed`)."""
    return build_tiny(folder, seed, "sd", _tiny_pipeline, TINY_DESCRIPTION, "Stable Diffusion 1.5")


def build_tiny_sdxl(folder: Path, seed: int = 0) -> Path:
    """Save a tiny random StableDiffusionXLPipeline to `folder` (reused when already built with `seed`)."""
    return build_tiny(folder, seed, "sdxl", _tiny_xl_pipeline, TINY_XL_DESCRIPTION, "Stable Diffusion XL")


def build_tiny(folder: Path, seed: int, family: str, make, note: str, shape: str) -> Path:
    """Save `make(staging_dir, seed)` (a pipeline) with its marker and README, atomically; reused when built with `seed`."""
    folder = Path(folder)
    if _built_with(folder, seed, family):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        make(staging, seed).save_pretrained(staging, safe_serialization=True)
        (staging / MARKER_FILE).write_text(json.dumps({"seed": seed, "family": family, "note": note}) + "\n")
        (staging / "README.md").write_text(
            f"# {note}\n\nBuilt by facecraft_pipeline.lora.build_tiny_{family}(seed={seed}) for offline demos "
            f"and tests. Same component types and layout as {shape}, random weights: "
            "anything generated with it (with or without LoRA) is noise.\n"
        )
        if folder.exists():  # a stale build (other seed) or a half-written folder
            shutil.rmtree(folder)
        os.rename(staging, folder)
    except OSError:
        if not _built_with(folder, seed, family):  # not just a concurrent builder that finished first
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _built_with(folder: Path, seed: int, family: str) -> bool:
    if not is_tiny_sd_folder(folder):
        return False
    marker = json.loads((folder / MARKER_FILE).read_text())
    return marker.get("seed") == seed and marker.get("family", "sd") == family


def _tiny_xl_pipeline(tokenizer_dir: Path, seed: int):
    """diffusers' own tiny SDXL test shapes: two CLIP encoders (hidden 32, projection 32), text_time conditioning."""
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(
            sample_size=32, in_channels=4, out_channels=4, block_out_channels=(32, 64), layers_per_block=1,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
            addition_time_embed_dim=8, transformer_layers_per_block=(1, 1),
            projection_class_embeddings_input_dim=6 * 8 + 32, cross_attention_dim=64,
        )
        vae = AutoencoderKL(
            in_channels=3, out_channels=3, block_out_channels=(32, 64),
            down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
            up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"), latent_channels=4, sample_size=64,
        )
        config = CLIPTextConfig(vocab_size=514, hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                                num_attention_heads=4, max_position_embeddings=77, projection_dim=32,
                                bos_token_id=512, eos_token_id=513, pad_token_id=513)
        text_encoder, text_encoder_2 = CLIPTextModel(config), CLIPTextModelWithProjection(config)
    scheduler = EulerDiscreteScheduler(  # SDXL base's own scheduler config
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
        steps_offset=1, timestep_spacing="leading", interpolation_type="linear",
    )
    tokenizer = _byte_tokenizer(tokenizer_dir)
    return StableDiffusionXLPipeline(vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2, tokenizer=tokenizer,
                                     tokenizer_2=tokenizer, unet=unet, scheduler=scheduler, force_zeros_for_empty_prompt=True)


def _tiny_pipeline(tokenizer_dir: Path, seed: int) -> StableDiffusionPipeline:
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(
            sample_size=32,
            in_channels=4,
            out_channels=4,
            block_out_channels=(32, 64),
            layers_per_block=1,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=32,
            attention_head_dim=4,
        )
        vae = AutoencoderKL(
            in_channels=3,
            out_channels=3,
            block_out_channels=(32, 64),
            down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
            up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
            latent_channels=4,
            sample_size=64,
        )
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                vocab_size=514,
                hidden_size=32,
                intermediate_size=37,
                num_hidden_layers=2,
                num_attention_heads=4,
                max_position_embeddings=77,
                projection_dim=32,
                bos_token_id=512,
                eos_token_id=513,
                pad_token_id=513,
            )
        )
    scheduler = PNDMScheduler(  # SD-1.5's own scheduler config
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        set_alpha_to_one=False,
        skip_prk_steps=True,
        steps_offset=1,
    )
    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=_byte_tokenizer(tokenizer_dir),
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def _byte_tokenizer(workdir: Path) -> CLIPTokenizer:
    """A CLIP tokenizer over single bytes (514 entries, no merges): real CLIP vocab files are not shipped."""
    from transformers import CLIPTokenizer

    chars = list(_bytes_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    vocab_file, merges_file = workdir / "vocab-src.json", workdir / "merges-src.txt"
    vocab_file.write_text(
        json.dumps({token: i for i, token in enumerate(tokens)}, ensure_ascii=False), encoding="utf-8"
    )
    merges_file.write_text("#version: 0.2\n", encoding="utf-8")
    tokenizer = CLIPTokenizer(str(vocab_file), str(merges_file), model_max_length=77)
    vocab_file.unlink()
    merges_file.unlink()
    return tokenizer


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte -> printable character table."""
    printable = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in chars), strict=True))
