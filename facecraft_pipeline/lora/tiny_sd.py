"""A tiny random Stable Diffusion pipeline, built locally, so the LoRA stage runs offline on a CPU.

It has the real SD-1.5 component types and folder layout, so it goes through exactly the
`from_pretrained(folder)` path a downloaded model takes; its weights are random, so its
images are noise. Built once per folder, deterministic per seed.
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
TINY_DESCRIPTION = "tiny random base model: images are noise"
MARKER_FILE = "facecraft_tiny_sd.json"


def is_tiny_sd_folder(folder: Path) -> bool:
    """True when `folder` holds a pipeline built by `build_tiny_sd` (so its output is noise)."""
    return (folder / MARKER_FILE).is_file() and (folder / "model_index.json").is_file()


def build_tiny_sd(folder: Path, seed: int = 0) -> Path:
    """Save a tiny random StableDiffusionPipeline to `folder` (reused when already built with `seed`)."""
    folder = Path(folder)
    if _built_with(folder, seed):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        _tiny_pipeline(staging, seed).save_pretrained(staging, safe_serialization=True)
        (staging / MARKER_FILE).write_text(json.dumps({"seed": seed, "note": TINY_DESCRIPTION}) + "\n")
        (staging / "README.md").write_text(
            f"# {TINY_DESCRIPTION}\n\nBuilt by facecraft_pipeline.lora.build_tiny_sd(seed={seed}) for offline demos "
            "and tests. Same component types and layout as Stable Diffusion 1.5, random weights: "
            "anything generated with it (with or without LoRA) is noise.\n"
        )
        if folder.exists():  # a stale build (other seed) or a half-written folder
            shutil.rmtree(folder)
        os.rename(staging, folder)
    except OSError:
        if not _built_with(folder, seed):  # not just a concurrent builder that finished first
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _built_with(folder: Path, seed: int) -> bool:
    if not is_tiny_sd_folder(folder):
        return False
    return json.loads((folder / MARKER_FILE).read_text()).get("seed") == seed


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
