"""FLUX.1 in the one LoRA trainer, on tiny-flux (every FLUX.1 block, few channels, random: images are noise):
training through the run protocol, exact reloads of the diffusers and kohya files, resume, the base-model paths."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from facecraft_pipeline.lora import (
    BaseModel,
    Example,
    LoraSettings,
    PriorSettings,
    checkpoint_weights,
    load_pipeline,
    read_metadata,
    resolve_base_model,
    train_lora,
)
from facecraft_pipeline.lora import flow_matching
from facecraft_pipeline.lora.families.flux import encode, image_ids, pack, unpack
from facecraft_pipeline.lora.kohya_flux import from_kohya_flux, to_kohya_flux
from facecraft_pipeline.training import ProgressLine, RunSettings, TrainResult
from facecraft_pipeline.training.images import load_images, to_float

PROMPT = "photo of sks person"
RECIPE = LoraSettings(
    base_model="tiny-flux", rank=4, alpha=8.0, learning_rate=5e-3, batch_size=2, max_sequence_length=16,
    face_loss_strength=0.5, ema_decay=0.5, random_flip=True, lr_scheduler="cosine", lr_warmup_steps=1, noise_offset=0.05,
    prior=PriorSettings(num_images=2, loss_weight=0.5, inference_steps=2, guidance_scale=3.5), validation_steps=2,
    run=RunSettings(steps=6, checkpoint_every=3, log_every=3, seed=3),
)


def examples(paths: list[Path]) -> list[Example]:
    return [Example(p, f"{PROMPT}, face turned to the left", f"{PROMPT}, face turned to the right", (16.0, 12.0, 48.0, 50.0),
                    (200, 200)) for p in paths[:3]]


@dataclass
class Trained:
    base: BaseModel
    result: TrainResult
    pipe: object
    lines: list[ProgressLine]


@pytest.fixture(scope="module")
def flux_base(model_cache: Path) -> BaseModel:
    return resolve_base_model("tiny-flux", model_cache)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, face_images, model_cache, flux_base) -> Trained:
    pipe = load_pipeline(flux_base)
    lines: list[ProgressLine] = []
    result = train_lora(examples(face_images), tmp_path_factory.mktemp("flux"), RECIPE, "cpu", model_cache, [lines.append],
                        pipe=pipe, dataset_digest="d" * 64)
    return Trained(flux_base, result, pipe, lines)


def _pixels(pipe) -> np.ndarray:
    images = pipe([PROMPT] * 2, num_inference_steps=2, guidance_scale=3.5, height=64, width=64, max_sequence_length=16,
                  generator=[torch.Generator().manual_seed(11 + i) for i in range(2)]).images
    return np.stack([np.asarray(i) for i in images])


def test_tiny_flux_is_a_flux_pipeline_loaded_from_its_folder_and_says_it_draws_noise(trained: Trained) -> None:
    assert (trained.base.family, trained.base.is_tiny_random) == ("flux", True)
    assert type(trained.pipe).__name__ == "FluxPipeline"
    assert "noise" in trained.base.description
    assert (Path(trained.base.location) / "model_index.json").is_file()
    config = trained.pipe.transformer.config
    assert (config.num_layers, config.num_single_layers, config.guidance_embeds) == (19, 38, True)
    assert trained.result.info.base_model["family"] == "flux"


def test_the_loss_terms_are_finite_and_the_run_keeps_its_checkpoints(trained: Trained) -> None:
    metrics = trained.result.metrics
    assert metrics["instance_loss"] > 0 and metrics["prior_loss"] > 0
    assert metrics["loss"] == pytest.approx(metrics["instance_loss"] + 0.5 * metrics["prior_loss"], rel=1e-5)
    assert [line.step for line in trained.lines] == [3, 6]
    checkpoints = trained.result.folder / "checkpoints"
    assert sorted(p.name for p in checkpoints.glob("step-*")) == ["step-3", "step-6"]
    assert trained.result.artifact("validation").is_file()


def test_the_diffusers_file_loads_with_flux_load_lora_weights_to_the_same_pixels(trained: Trained) -> None:
    reloaded = load_pipeline(trained.base)
    base = load_pipeline(trained.base)
    reloaded.load_lora_weights(str(trained.result.folder))
    tensors = load_file(trained.result.artifact("weights"))

    assert tensors and all(k.startswith("transformer.") for k in tensors)
    assert any(".single_transformer_blocks." in k and k.endswith("proj_mlp.lora_A.weight") for k in tensors)  # MLP too
    assert any(".transformer_blocks.18.ff_context.net.2." in k for k in tensors)
    assert not any(k.startswith("transformer.proj_out.") for k in tensors)  # the output layer is not a block's
    assert np.array_equal(_pixels(trained.pipe), _pixels(reloaded))
    assert not np.array_equal(_pixels(reloaded), _pixels(base))


def test_the_kohya_file_has_bfl_block_names_and_converts_back_to_the_same_tensors(trained: Trained) -> None:
    kohya = load_file(trained.result.artifact("kohya_weights"))
    diffusers = {k.removeprefix("transformer."): v for k, v in load_file(trained.result.artifact("weights")).items()}

    assert any(k.startswith("lora_unet_double_blocks_18_img_attn_qkv.") for k in kohya)
    assert any(k.startswith("lora_unet_single_blocks_37_linear1.") for k in kohya)
    assert kohya["lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight"].shape[0] == 3 * 4  # q, k, v stacked
    assert float(kohya["lora_unet_double_blocks_0_img_attn_qkv.alpha"]) / 12 == 8.0 / 4  # every reader's alpha / rank
    assert float(kohya["lora_unet_single_blocks_0_linear2.alpha"]) == 8.0
    back, alphas = from_kohya_flux(kohya)
    assert back.keys() == diffusers.keys()
    assert all(torch.equal(back[k], diffusers[k]) for k in diffusers)
    assert set(alphas.values()) == {8.0}


def test_kohya_conversion_writes_untrained_parts_of_a_fused_module_as_zeros_and_leaves_them_out_again() -> None:
    g = torch.Generator().manual_seed(0)
    only_q = {"single_transformer_blocks.0.attn.to_q.lora_A.weight": torch.randn(2, 8, generator=g),
              "single_transformer_blocks.0.attn.to_q.lora_B.weight": torch.randn(8, 2, generator=g)}
    kohya = to_kohya_flux(only_q, alpha=2.0)

    assert kohya["lora_unet_single_blocks_0_linear1.lora_up.weight"].shape == (8 * 3 + 32, 8)  # q, k, v, MLP (4x)
    back, _ = from_kohya_flux(kohya)
    assert back.keys() == only_q.keys() and all(torch.equal(back[k], only_q[k]) for k in only_q)


def test_the_header_says_flux_and_the_flow_matching_recipe(trained: Trained) -> None:
    header = read_metadata(trained.result.artifact("kohya_weights"))
    expected = {"facecraft.family": "flux", "ss_base_model_version": "flux1", "ss_network_module": "networks.lora_flux",
                "modelspec.architecture": "flux-1-dev/lora", "ss_timestep_sampling": "logit_normal",
                "ss_guidance_scale": "1.0", "ss_network_alpha": "8.0", "facecraft.steps": "6", "ss_num_reg_images": "2"}
    assert {k: header.get(k) for k in expected} == expected


def test_a_kept_checkpoint_writes_the_same_loadable_files(trained: Trained, tmp_path: Path) -> None:
    checkpoint_weights(trained.result.folder / "checkpoints" / "checkpoint-0000006.pt", tmp_path)
    pipe = load_pipeline(trained.base)
    pipe.load_lora_weights(str(tmp_path))
    assert np.array_equal(_pixels(pipe), _pixels(trained.pipe))


def test_resume_ends_where_uninterrupted_training_does(trained: Trained, face_images, model_cache: Path, tmp_path: Path) -> None:
    def stop(line: ProgressLine) -> None:
        if line.step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_lora(examples(face_images), tmp_path, RECIPE, "cpu", model_cache, [stop], dataset_digest="d" * 64)
    resumed = train_lora(examples(face_images), tmp_path, RECIPE, "cpu", model_cache, dataset_digest="d" * 64)

    expected, actual = load_file(trained.result.artifact("weights")), load_file(resumed.artifact("weights"))
    assert resumed.resumed_from == 3 and expected.keys() == actual.keys()
    assert all(torch.equal(expected[k], actual[k]) for k in expected)
    assert resumed.metrics == pytest.approx(trained.result.metrics)


def _flow_error(pipe, images: list[Path]) -> float:
    """Rectified-flow MSE of the transformer on `images` at fixed noise and noise levels."""
    pixels = to_float(load_images(images, 64))
    with torch.no_grad():
        latents = (pipe.vae.encode(pixels).latent_dist.mean - pipe.vae.config.shift_factor) * pipe.vae.config.scaling_factor
        noise = torch.randn(latents.shape, generator=torch.Generator().manual_seed(0))
        sigmas = torch.tensor([0.3, 0.6, 0.8])[: len(pixels)]
        noisy = flow_matching.noisy_latents(latents, noise, sigmas)
        cond = encode(pipe, [PROMPT] * len(pixels), 16)
        h, w = latents.shape[-2:]
        out = pipe.transformer(hidden_states=pack(noisy), timestep=sigmas, guidance=torch.ones(len(pixels)),
                               pooled_projections=cond.pooled, encoder_hidden_states=cond.hidden,
                               txt_ids=torch.zeros(16, 3), img_ids=image_ids(h, w, "cpu", torch.float32), return_dict=False)[0]
    return float(((unpack(out, h, w) - flow_matching.velocity(latents, noise)) ** 2).mean())


def test_the_flow_matching_loss_falls_over_a_short_run(face_images, model_cache: Path, flux_base: BaseModel, tmp_path: Path) -> None:
    settings = LoraSettings(base_model="tiny-flux", rank=8, alpha=8.0, learning_rate=1e-2, batch_size=2, max_sequence_length=16,
                            validation_prompts=(), run=RunSettings(steps=16, checkpoint_every=16, log_every=8, seed=0))
    pipe = load_pipeline(flux_base)
    before = _flow_error(pipe, face_images[:2])

    train_lora([Example(p, PROMPT) for p in face_images[:2]], tmp_path, settings, "cpu", model_cache, pipe=pipe)

    after = _flow_error(pipe, face_images[:2])
    assert after < 0.97 * before, (before, after)


def test_a_trainer_that_loads_flux_itself_frees_the_text_encoders(face_images, model_cache: Path, flux_base: BaseModel) -> None:
    from facecraft_pipeline.lora.train import LoraTrainer

    settings = replace(RECIPE, prior=PriorSettings(), validation_seeds=(0,))
    pipe = load_pipeline(flux_base)
    trainer = LoraTrainer(pipe, examples(face_images), settings, torch.device("cpu"), owns_pipeline=True)

    assert pipe.text_encoder is None and pipe.text_encoder_2 is None
    assert trainer.ops.generate(settings.prompts()[0], 0, 2, 64)[0].size == (64, 64)  # cached validation prompts


def test_packing_is_lossless_and_ids_count_rows_and_columns() -> None:
    latents = torch.randn(2, 16, 8, 6)
    ids = image_ids(8, 6, "cpu", torch.float32)
    assert pack(latents).shape == (2, 12, 64)
    assert torch.equal(unpack(pack(latents), 8, 6), latents)
    assert ids[:, 0].eq(0).all() and ids[-1].tolist() == [0.0, 3.0, 2.0]


def test_logit_normal_noise_levels_are_shifted_towards_noise() -> None:
    plain = flow_matching.sample_sigmas(4000, torch.Generator().manual_seed(0), torch.device("cpu"))
    shifted = flow_matching.sample_sigmas(4000, torch.Generator().manual_seed(0), torch.device("cpu"), shift=3.0)
    assert 0 < float(plain.min()) and float(plain.max()) < 1
    assert abs(float(plain.median()) - 0.5) < 0.03 and float(shifted.median()) == pytest.approx(0.75, abs=0.03)


def test_a_single_transformer_file_loads_with_the_components_of_its_pipeline(flux_base: BaseModel, tmp_path: Path) -> None:
    folder_pipe = load_pipeline(flux_base)
    single = tmp_path / "my-flux-finetune.safetensors"
    save_file({k: v.contiguous() for k, v in folder_pipe.transformer.state_dict().items()}, single)

    base = resolve_base_model(str(single), tmp_path, components=flux_base.location)
    pipe = load_pipeline(base)

    assert (base.family, base.components, base.is_single_file) == ("flux", flux_base.location, True)
    assert np.array_equal(_pixels(pipe), _pixels(folder_pipe))


def test_bad_flux_input_is_refused_in_one_sentence_naming_the_setting(face_images, model_cache, tmp_path: Path) -> None:
    sd_file = tmp_path / "v1-5.safetensors"
    save_file({"cond_stage_model.transformer.text_model.final_layer_norm.weight": torch.zeros(1)}, sd_file)
    with pytest.raises(ValueError, match="LoraSettings.base_model .* is a Stable Diffusion 1.x/2.x checkpoint, not a FLUX.1"):
        resolve_base_model(str(sd_file), tmp_path, family="flux")
    with pytest.raises(ValueError, match="LoraSettings.resolution must be a multiple of 16 for flux"):
        train_lora(face_images[:1], tmp_path, replace(RECIPE, resolution=72), "cpu", model_cache)
    with pytest.raises(ValueError, match="LoraSettings.snr_gamma"):
        train_lora(face_images[:1], tmp_path, replace(RECIPE, snr_gamma=5.0), "cpu", model_cache)
    with pytest.raises(ValueError, match="LoraSettings.train_text_encoder is not supported for flux"):
        train_lora(face_images[:1], tmp_path, replace(RECIPE, train_text_encoder=True), "cpu", model_cache)


def test_the_held_out_loss_is_logged_beside_the_training_loss_and_is_the_same_after_a_resume(
        face_images, model_cache: Path, tmp_path: Path) -> None:
    settings = replace(RECIPE, validation_loss_every=3, validation_prompts=())
    held_out = examples(face_images[3:])

    def stop(line: ProgressLine) -> None:
        if line.step == 3:
            raise KeyboardInterrupt

    lines: list[ProgressLine] = []
    whole = train_lora(examples(face_images), tmp_path / "whole", settings, "cpu", model_cache, [lines.append], held_out=held_out)
    with pytest.raises(KeyboardInterrupt):
        train_lora(examples(face_images), tmp_path / "cut", settings, "cpu", model_cache, [stop], held_out=held_out)
    resumed = train_lora(examples(face_images), tmp_path / "cut", settings, "cpu", model_cache, held_out=held_out)

    assert [sorted(line.metrics) for line in lines] == [["instance_loss", "loss", "prior_loss", "val_loss"]] * 2
    assert all(line.metrics["val_loss"] > 0 for line in lines)
    assert resumed.metrics["val_loss"] == pytest.approx(whole.metrics["val_loss"])
    with pytest.raises(ValueError, match="LoraSettings.validation_loss_every must be a multiple of run.log_every"):
        train_lora(examples(face_images), tmp_path, replace(settings, validation_loss_every=4), "cpu", model_cache)


def test_quantized_bases_and_vram_presets_are_refused_for_a_run_that_is_not_on_cuda(face_images, model_cache, tmp_path) -> None:
    with pytest.raises(ValueError, match=r"^LoraSettings.quantize_base=nf4 needs a CUDA GPU and this run is on cpu"):
        train_lora(face_images[:1], tmp_path, replace(RECIPE, quantize_base="nf4"), "cpu", model_cache)
    with pytest.raises(ValueError, match=r"^LoraSettings.quantize_base=float8 needs a CUDA GPU"):
        train_lora(face_images[:1], tmp_path, replace(RECIPE, vram_gb=24), "cpu", model_cache)  # 24 GiB: float8 FLUX.1
    with pytest.raises(ValueError, match=r"LoraSettings.vram_gb must be one of \[None, 12, 16, 24\]"):
        replace(RECIPE, vram_gb=8)


def test_vram_presets_turn_memory_savers_on_for_the_family() -> None:
    from facecraft_pipeline.lora.memory import apply_vram_preset

    flux16 = apply_vram_preset(replace(RECIPE, vram_gb=16), "flux")
    sd12 = apply_vram_preset(replace(RECIPE, vram_gb=12, batch_size=4), "sd")

    assert (flux16.quantize_base, flux16.gradient_checkpointing, flux16.optimizer) == ("nf4", True, "adamw8bit")
    assert (sd12.quantize_base, sd12.gradient_checkpointing, sd12.batch_size) == ("none", True, 1)
    assert apply_vram_preset(RECIPE, "flux") is RECIPE  # no preset: the settings as given


def test_gradient_checkpointing_recomputes_the_transformer_and_trains_the_same_step(face_images, flux_base: BaseModel) -> None:
    from facecraft_pipeline.lora.train import LoraTrainer

    settings = replace(RECIPE, prior=PriorSettings(), validation_prompts=(), random_flip=False)
    plain = LoraTrainer(load_pipeline(flux_base), examples(face_images), settings, torch.device("cpu"))
    saving = LoraTrainer(load_pipeline(flux_base), examples(face_images), replace(settings, gradient_checkpointing=True),
                         torch.device("cpu"))

    assert saving.ops.denoiser.is_gradient_checkpointing and not plain.ops.denoiser.is_gradient_checkpointing
    assert torch.allclose(plain.step(), saving.step(), rtol=1e-5)


def test_a_run_can_start_from_a_flux_lora_but_not_from_another_familys(trained: Trained, face_images, model_cache, tmp_path) -> None:
    from facecraft_pipeline.lora.train import LoraTrainer

    settings = replace(RECIPE, prior=PriorSettings(), validation_prompts=(),
                       init_lora=str(trained.result.artifact("kohya_weights")))
    trainer = LoraTrainer(load_pipeline(trained.base), examples(face_images), settings, torch.device("cpu"))
    started = {f"transformer.{k.replace('.default', '')}": p for k, p in trainer.params["transformer"].items()}
    saved = load_file(trained.result.artifact("weights"))
    assert started.keys() == saved.keys() and all(torch.equal(started[k], saved[k]) for k in saved)

    sd_lora = tmp_path / "sd.safetensors"
    save_file({"unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.lora.down.weight": torch.zeros(4, 32)}, sd_lora)
    with pytest.raises(ValueError, match=r"LoraSettings.init_lora 'sd.safetensors' is a sd LoRA, but the base model is flux"):
        train_lora(examples(face_images), tmp_path, replace(RECIPE, init_lora=str(sd_lora)), "cpu", model_cache)
    with pytest.raises(ValueError, match=r"has rank \[4\], LoraSettings.rank is 8"):
        train_lora(examples(face_images), tmp_path, replace(settings, rank=8), "cpu", model_cache)


def test_offline_a_flux_hub_id_or_components_that_are_not_cached_are_refused(flux_base: BaseModel, tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from facecraft_pipeline.lora import BaseModelUnavailable

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    single = tmp_path / "finetune.safetensors"
    save_file({"single_transformer_blocks.0.proj_out.weight": torch.zeros(1)}, single)

    with pytest.raises(BaseModelUnavailable, match="'black-forest-labs/FLUX.1-dev' is not in the local Hugging Face cache"):
        resolve_base_model("black-forest-labs/FLUX.1-dev", tmp_path)
    with pytest.raises(BaseModelUnavailable, match="^LoraSettings.base_components: base model 'black-forest-labs/FLUX.1-schnell'"):
        resolve_base_model(str(single), tmp_path)  # no guidance embedder: schnell's components, not cached here
