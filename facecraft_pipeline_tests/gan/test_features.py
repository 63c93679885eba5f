"""Architectures at 64/128 px, controls (AC-GAN), progressive growing, gene mixing, quality scores,
interpolation sheets, bad input: each on tiny real data through the real trainer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from facecraft_pipeline.gan import kid, load_generator, mix_genes, train_gan
from facecraft_pipeline.gan.grow import stage_at
from facecraft_pipeline.gan.sample_quality import best_step
from facecraft_pipeline.gan.settings import AdaSettings, TrickSettings
from facecraft_pipeline.gan.train import GanTrainer
from facecraft_pipeline.training import ProgressLine
from facecraft_pipeline.training.images import load_images
from facecraft_pipeline_tests.gan.conftest import draw_face, drawn_faces, tiny
from facecraft_pipeline_tests.gan.test_train import assert_same_weights


@pytest.fixture(scope="module")
def large_faces(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return drawn_faces(tmp_path_factory.mktemp("large"), 8, (128, 128), seed=1)


@pytest.mark.parametrize("resolution", [64, 128])
@pytest.mark.parametrize("variant", [
    dict(arch="upsample", attention_res=16),
    dict(arch="resnet", spectral_norm_g=True, loss="hinge", r1_gamma=1.0),
    dict(arch="dcgan", spectral_norm=False, minibatch_std=False),
    dict(kind="wgan_gp", arch="upsample", n_critic=2, spectral_norm=False),
])
def test_architecture_variants_build_and_train_a_few_steps(variant: dict, resolution: int, large_faces: list[Path],
                                                           tmp_path: Path) -> None:
    settings = tiny(resolution=resolution, batch_size=4, base_channels=4, steps=2, checkpoint_every=2, sample_every=0,
                    log_every=1, **variant)
    result = train_gan(large_faces, tmp_path, settings)
    assert result.steps == 2 and all(np.isfinite(v) for v in result.metrics.values())
    generator = load_generator(result.artifact("checkpoint"))
    assert generator(torch.randn(2, settings.latent_dim)).shape == (2, 3, resolution, resolution)


def _brightness_faces(folder: Path, n: int = 16) -> tuple[list[Path], torch.Tensor]:
    """Faces whose overall brightness is the synthetic attribute, spread over [-1, 1]."""
    rng = np.random.default_rng(2)
    paths, values = [], []
    for i in range(n):
        level = -1 + 2 * i / (n - 1)
        array = np.asarray(draw_face(rng, (16, 16)), dtype=np.float32) * 0.2 + (level + 1) * 100
        path = folder / f"b{i:02d}.png"
        Image.fromarray(array.clip(0, 255).astype(np.uint8)).save(path)
        paths.append(path)
        values.append([level])
    return paths, torch.tensor(values)


def test_an_auxiliary_head_learns_a_synthetic_attribute_and_g_follows_the_slider(tmp_path: Path) -> None:
    paths, brightness = _brightness_faces(tmp_path)
    settings = tiny(controls="brightness", diffaugment="translation", batch_size=8, lr_d=1e-3, lr_g=1e-3, ema_decay=0.0,
                    control_weight=5.0)
    trainer = GanTrainer(load_images(paths, 16), settings, controls=brightness)
    for _ in range(80):
        trainer.step()
    trainer.D.eval()
    _, predicted = trainer.D.forward_aux(trainer.images.float() / 127.5 - 1)
    corr = np.corrcoef(predicted[:, 0].detach().numpy(), brightness[:, 0].numpy())[0, 1]
    assert corr > 0.9  # the head reads the attribute off the pixels
    z = torch.randn(16, settings.latent_dim, generator=torch.Generator().manual_seed(0))
    trainer.G.eval()
    with torch.no_grad():
        dark, bright = trainer.G(z, torch.full((16, 1), -1.0)), trainer.G(z, torch.full((16, 1), 1.0))
    assert bright.mean() - dark.mean() > 0.3  # moving the slider moves the attribute


def test_controls_need_one_vector_per_image(face_paths: list[Path], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"needs a control vector per image \(24 x 2\), got None"):
        train_gan(face_paths, tmp_path, tiny(controls="yaw,brightness"))


def test_progressive_growing_stages_follow_the_step() -> None:
    settings = tiny(grow="8:4,16:0", grow_freeze=0.5)
    assert [(s.side, s.frozen) for s in (stage_at(settings, step) for step in range(8))] == \
        [(8, False)] * 4 + [(16, True)] * 2 + [(16, False)] * 2


def test_progressive_growing_changes_resolution_freezes_then_fine_tunes_and_resumes_mid_phase(
        face_paths: list[Path], tmp_path: Path) -> None:
    settings = tiny(grow="8:4,16:0", grow_freeze=0.5, steps=8, checkpoint_every=5, sample_every=0, log_every=1)
    trainer = GanTrainer(load_images(face_paths, 16), settings)
    seen = []
    trainer.G.blocks["16"].register_forward_hook(lambda m, i, o: seen.append(o.shape[-1]))
    for _ in range(4):
        trainer.step()
    assert seen == [] and trainer.G.stage == 8  # stage 1: the 16 px block does not run
    old = {k: v.clone() for k, v in trainer.G.blocks["8"].state_dict().items()}
    trainer.step()
    trainer.step()
    assert seen and seen[-1] == 16 and trainer.G.stage == 16
    assert all(torch.equal(old[k], v) for k, v in trainer.G.blocks["8"].state_dict().items() if "running" not in k and "num_batches" not in k)
    trainer.step()  # fine-tuning: the old layers train again
    assert not torch.equal(old["body.1.weight"], trainer.G.blocks["8"].state_dict()["body.1.weight"])

    def stop_at_6(line: ProgressLine) -> None:
        if line.step == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_gan(face_paths, tmp_path / "a", settings, progress=[stop_at_6])
    resumed = train_gan(face_paths, tmp_path / "a", settings)  # from step 5: mid-way through the frozen phase
    straight = train_gan(face_paths, tmp_path / "b", settings)
    assert resumed.resumed_from == 5
    assert_same_weights(resumed.artifact("checkpoint"), straight.artifact("checkpoint"))
    assert load_generator(straight.artifact("checkpoint"))(torch.randn(1, settings.latent_dim)).shape[-1] == 16


def test_a_checkpoint_taken_while_growing_loads_at_its_stage(face_paths: list[Path], tmp_path: Path) -> None:
    settings = tiny(grow="8:4,16:0", steps=4, checkpoint_every=2, sample_every=0)
    result = train_gan(face_paths, tmp_path, settings)
    generator = load_generator(result.artifact("checkpoint"))
    image = generator(torch.randn(1, settings.latent_dim))
    assert generator.stage == 8 and image.shape[-1] == 16
    assert torch.equal(image[..., ::2, ::2].repeat_interleave(2, -1).repeat_interleave(2, -2), image)  # 8 px upsampled


def test_gene_mixing_is_deterministic_for_a_seed_and_takes_each_gene_from_a_parent(face_paths: list[Path], tmp_path: Path) -> None:
    result = train_gan(face_paths, tmp_path, tiny(steps=2, checkpoint_every=2, sample_every=0))
    generator = load_generator(result.artifact("checkpoint"))
    a, b = (torch.randn(generator.latent_dim, generator=torch.Generator().manual_seed(s)) for s in (1, 2))
    child = mix_genes(a.tolist(), b.tolist(), seed=7)
    assert child == mix_genes(a.tolist(), b.tolist(), seed=7) and child.latent != mix_genes(a.tolist(), b.tolist(), seed=8).latent
    assert all(v == (b if src else a)[i].item() for i, (v, src) in enumerate(zip(child.latent, child.latent_from, strict=True)))
    assert 0 < sum(child.latent_from) < generator.latent_dim
    face = generator(torch.tensor([child.latent]))  # the child is a latent this generator draws
    assert face.shape == (1, 3, 16, 16)
    with pytest.raises(ValueError, match="different sizes"):
        mix_genes([0.0] * 3, [0.0] * 4, seed=0)


def test_resume_is_bit_exact_with_every_trick_on(face_paths: list[Path], tmp_path: Path) -> None:
    settings = tiny(steps=12, checkpoint_every=5, sample_every=0, log_every=1, r1_gamma=0.5, loss="hinge",
                    tricks=TrickSettings(instance_noise=0.1, noise_steps=20, replay_size=16, d_dropout=0.1),
                    ada=AdaSettings(target=0.6, interval=2, speed_images=100))

    def stop_at_8(line: ProgressLine) -> None:
        if line.step == 8:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_gan(face_paths, tmp_path / "a", settings, progress=[stop_at_8])
    resumed = train_gan(face_paths, tmp_path / "a", settings)
    straight = train_gan(face_paths, tmp_path / "b", settings)
    assert resumed.resumed_from == 5
    assert_same_weights(resumed.artifact("checkpoint"), straight.artifact("checkpoint"))
    a, b = (torch.load(r.artifact("checkpoint"), weights_only=True) for r in (resumed, straight))
    assert torch.equal(a["replay"]["images"], b["replay"]["images"]) and torch.equal(a["ada"]["p"], b["ada"]["p"])


def test_no_images_and_a_resolution_above_the_dataset_are_refused(face_paths: list[Path], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"needs at least one image, got none"):
        train_gan([], tmp_path, tiny())
    with pytest.raises(ValueError, match=r"resolution=64 is above the dataset's images \(smallest side 40 px\)"):
        train_gan(face_paths, tmp_path, tiny(resolution=64))


def test_quality_scores_are_logged_at_their_cadence_and_the_best_step_lands_in_run_json(face_paths: list[Path],
                                                                                     tmp_path: Path) -> None:
    calls: list[tuple[int, Path, dict]] = []

    def brightness_score(images) -> dict[str, float]:  # a real scorer: share of "bright" samples
        return {"faces_found": float(np.mean([np.asarray(im).mean() > 100 for im in images]))}

    settings = tiny(steps=20, sample_every=5, quality_every=10, quality_samples=4)
    result = train_gan(face_paths, tmp_path, settings, quality=brightness_score,
                       on_sample=lambda step, grid, metrics: calls.append((step, grid, metrics)))
    assert [step for step, _, _ in calls] == [5, 10, 15, 20]
    assert [bool(m) for _, _, m in calls] == [False, True, False, True] and all(g.exists() for _, g, _ in calls)
    rows = [json.loads(line) for line in (result.folder / "quality.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [10, 20]
    best = json.loads((result.folder / "run.json").read_text())["best"]
    assert best["by"] == "faces_found" and best["step"] in (10, 20)
    assert best["faces_found"] == max(r["faces_found"] for r in rows)


def test_best_step_prefers_the_lowest_kid(tmp_path: Path) -> None:
    log = tmp_path / "quality.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in [
        {"step": 10, "kid_dlib128": 0.5, "faces_found": 1.0}, {"step": 20, "kid_dlib128": 0.1, "faces_found": 0.5},
        {"step": 10, "kid_dlib128": 0.05, "faces_found": 1.0}]))  # a resumed session rewrote step 10
    assert best_step(log)["step"] == 10 and best_step(tmp_path / "none.jsonl") is None


def test_kid_is_near_zero_for_one_distribution_and_grows_with_a_shift() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(200, 16)), rng.normal(size=(200, 16))
    assert abs(kid(x, y)) < 0.05 and kid(x, y + 1.0) > 1.0
    # hand-computed: d = 1, x = [0, 1], y = [2, 3]; k = (ab + 1)^3
    k = lambda a, b: (a * b + 1) ** 3  # noqa: E731
    expected = 2 * k(0, 1) / 2 + 2 * k(2, 3) / 2 - 2 * (k(0, 2) + k(0, 3) + k(1, 2) + k(1, 3)) / 4
    assert kid(np.array([[0.0], [1.0]]), np.array([[2.0], [3.0]])) == pytest.approx(expected)


def test_interpolation_sheets_walk_between_fixed_latents(face_paths: list[Path], tmp_path: Path) -> None:
    from facecraft_pipeline.gan.sample import fixed_latents, interpolation_latents

    result = train_gan(face_paths, tmp_path, tiny(steps=2, checkpoint_every=2, sample_every=1))
    generator = load_generator(result.artifact("checkpoint"))
    z = interpolation_latents(generator, seed=0, rows=2, columns=5)
    ends = fixed_latents(generator, 4, seed=0)
    assert torch.allclose(z[0], ends[0], atol=1e-5) and torch.allclose(z[4], ends[1], atol=1e-5)
    assert torch.allclose(z[5], ends[2], atol=1e-5)
    grid = interpolation_latents(generator, seed=0, rows=3, columns=3, two_d=True)
    corners = fixed_latents(generator, 4, seed=0)
    assert torch.allclose(grid[0], corners[0], atol=1e-5) and torch.allclose(grid[8], corners[3], atol=1e-5)
    for name in ("interpolation", "interpolation_2d", "gif"):
        assert result.artifact(name).exists()
    assert Image.open(result.artifact("gif")).n_frames == 2
