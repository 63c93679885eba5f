"""diffusers' own LoRA training recipes for SDXL and FLUX.1, inner loop only: the references the GPU check times.

SD-1.5's is `lora_train.example_loop`. These follow train_dreambooth_lora_sdxl.py (fp16 UNet, fp32 VAE
encoding every step, prompt embedded once, size conditioning per step) and train_dreambooth_lora_flux.py
(bf16 transformer and VAE, prompt embedded once, packed 2x2 latents, flow matching with the scheduler's
shifted sigmas, guidance embedding 3.5). Both: fp32 LoRA params, AdamW, gradient clipping at 1.0, and a
`loss.item()` per step (their logging: a host sync). Returns the median seconds per step after `warmup`.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

SD_TARGETS = ["to_k", "to_q", "to_v", "to_out.0"]
FLUX_TARGETS = ["attn.to_k", "attn.to_q", "attn.to_v", "attn.to_out.0", "attn.add_k_proj", "attn.add_q_proj",
                "attn.add_v_proj", "attn.to_add_out", "ff.net.0.proj", "ff.net.2", "ff_context.net.0.proj", "ff_context.net.2"]


def median_step_seconds(step: Callable[[], float], steps: int, warmup: int, device: torch.device) -> float:
    times = []
    for index in range(warmup + steps):
        started = time.perf_counter()
        step()  # ends with loss.item(): the step is finished on the device when it returns
        if index >= warmup:
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def _lora_optimizer(model: torch.nn.Module, targets: list[str], rank: int) -> tuple[list[torch.nn.Parameter], torch.optim.Optimizer]:
    from diffusers.training_utils import cast_training_params
    from peft import LoraConfig

    model.requires_grad_(False)
    model.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian", target_modules=targets))
    cast_training_params(model, dtype=torch.float32)
    params = [p for p in model.parameters() if p.requires_grad]
    return params, torch.optim.AdamW(params, lr=1e-4)


def _finish(loss: torch.Tensor, params, optimizer) -> float:
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()
    optimizer.zero_grad()
    return loss.detach().item()


def sdxl_example_loop(pipe, pixels: torch.Tensor, batch: int, steps: int, warmup: int, weight_dtype: torch.dtype,
                      device: torch.device, rank: int = 8) -> float:
    """train_dreambooth_lora_sdxl.py: `pixels` (N, 3, H, W) in [-1, 1] on the CPU."""
    from diffusers import DDPMScheduler

    unet, vae = pipe.unet.to(device, weight_dtype), pipe.vae.to(device, torch.float32)  # the script keeps the SDXL VAE in fp32
    encoders = [pipe.text_encoder.to(device, weight_dtype), pipe.text_encoder_2.to(device, weight_dtype)]
    vae.requires_grad_(False)
    for encoder in encoders:
        encoder.requires_grad_(False)
    params, optimizer = _lora_optimizer(unet, SD_TARGETS, rank)
    scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    with torch.no_grad():  # encode_prompt, once (the text encoders are frozen and the prompt fixed)
        hidden, pooled = [], None
        for tokenizer, encoder in zip((pipe.tokenizer, pipe.tokenizer_2), encoders):
            ids = tokenizer(["photo of sks person"], padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
            out = encoder(ids.to(device), output_hidden_states=True)
            pooled = out[0]  # the last encoder's projected pooled output
            hidden.append(out.hidden_states[-2])
        prompt_embeds = torch.cat(hidden, dim=-1)
    side = pixels.shape[-1]

    def step() -> float:
        chosen = pixels[torch.randint(0, len(pixels), (batch,))].to(device, torch.float32)
        latents = (vae.encode(chosen).latent_dist.sample() * vae.config.scaling_factor).to(weight_dtype)
        noise = torch.randn_like(latents)
        timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (batch,), device=device)
        noisy = scheduler.add_noise(latents, noise, timesteps)
        time_ids = torch.tensor([[side, side, 0, 0, side, side]] * batch, device=device, dtype=weight_dtype)
        added = {"time_ids": time_ids, "text_embeds": pooled.repeat(batch, 1)}
        with torch.autocast(device.type, dtype=weight_dtype, enabled=weight_dtype != torch.float32):
            prediction = unet(noisy, timesteps, prompt_embeds.repeat(batch, 1, 1), added_cond_kwargs=added, return_dict=False)[0]
        return _finish(F.mse_loss(prediction.float(), noise.float(), reduction="mean"), params, optimizer)

    return median_step_seconds(step, steps, warmup, device)


def pack_latents(latents: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, H/2 * W/2, 4C): FLUX.1's 2x2 patch tokens."""
    b, c, h, w = latents.shape
    return latents.view(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5).reshape(b, (h // 2) * (w // 2), c * 4)


def unpack_latents(tokens: torch.Tensor, c: int, h: int, w: int) -> torch.Tensor:
    b = tokens.shape[0]
    return tokens.view(b, h // 2, w // 2, c, 2, 2).permute(0, 3, 1, 4, 2, 5).reshape(b, c, h, w)


def image_ids(h: int, w: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(h/2 * w/2, 3) positions of the packed tokens: (0, row, column), as the Flux pipeline builds them."""
    ids = torch.zeros(h // 2, w // 2, 3, device=device, dtype=dtype)
    ids[..., 1] = torch.arange(h // 2, device=device, dtype=dtype)[:, None]
    ids[..., 2] = torch.arange(w // 2, device=device, dtype=dtype)[None, :]
    return ids.reshape(-1, 3)


def flux_example_loop(transformer, vae, text_tokens: int, pixels: torch.Tensor, batch: int, steps: int, warmup: int,
                      weight_dtype: torch.dtype, device: torch.device, rank: int = 8) -> float:
    """train_dreambooth_lora_flux.py on an already built transformer (bf16 or NF4) and VAE."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    vae = vae.to(device, weight_dtype).requires_grad_(False)
    params, optimizer = _lora_optimizer(transformer, FLUX_TARGETS, rank)
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=3.0)
    sigmas_all, timesteps_all = scheduler.sigmas.to(device), scheduler.timesteps.to(device)
    config = transformer.config
    g = torch.Generator(device).manual_seed(0)
    prompt_embeds = torch.randn(batch, text_tokens, config.joint_attention_dim, device=device, dtype=weight_dtype, generator=g)
    pooled = torch.randn(batch, config.pooled_projection_dim, device=device, dtype=weight_dtype, generator=g)
    text_ids = torch.zeros(text_tokens, 3, device=device, dtype=weight_dtype)
    guidance = torch.full((batch,), 3.5, device=device, dtype=torch.float32) if config.guidance_embeds else None

    def step() -> float:
        chosen = pixels[torch.randint(0, len(pixels), (batch,))].to(device, weight_dtype)
        latents = (vae.encode(chosen).latent_dist.sample() - vae.config.shift_factor) * vae.config.scaling_factor
        _, c, h, w = latents.shape
        noise = torch.randn_like(latents)
        index = torch.randint(0, len(timesteps_all), (batch,), device=device)
        sigmas = sigmas_all[index].view(-1, 1, 1, 1).to(weight_dtype)
        noisy = (1.0 - sigmas) * latents + sigmas * noise
        prediction = transformer(hidden_states=pack_latents(noisy), timestep=timesteps_all[index] / 1000, guidance=guidance,
                                 pooled_projections=pooled, encoder_hidden_states=prompt_embeds, txt_ids=text_ids,
                                 img_ids=image_ids(h, w, device, weight_dtype), return_dict=False)[0]
        prediction = unpack_latents(prediction, c, h, w)
        loss = ((prediction.float() - (noise - latents).float()) ** 2).reshape(batch, -1).mean(1).mean()
        return _finish(loss, params, optimizer)

    return median_step_seconds(step, steps, warmup, device)
