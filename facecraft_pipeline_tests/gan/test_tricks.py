"""Each stabilising trick changes what it should: replay buffer, instance noise, ADA, label flips (in test_losses)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from facecraft_pipeline.gan import GanSettings
from facecraft_pipeline.gan.settings import AdaSettings, TrickSettings
from facecraft_pipeline.gan.train import GanTrainer
from facecraft_pipeline.gan.tricks import AdaController, ReplayBuffer, instance_noise_std
from facecraft_pipeline.training.images import load_images
from facecraft_pipeline_tests.gan.conftest import tiny


def test_replay_buffer_feeds_d_earlier_fakes_at_the_set_share() -> None:
    buffer = ReplayBuffer(8, (1, 2, 2), torch.device("cpu"))
    rng = torch.Generator().manual_seed(0)
    first = torch.full((8, 1, 2, 2), 1.0)
    assert torch.equal(buffer.mix(first, 0.5, rng), first)  # empty buffer: nothing old to show yet
    assert buffer.filled == 8
    shown = buffer.mix(torch.full((8, 1, 2, 2), 2.0), 0.5, rng)
    values = shown.flatten(1)[:, 0].tolist()
    assert values == [2.0] * 4 + [1.0] * 4  # half of what D sees comes from an earlier step
    assert (buffer.images == 2.0).any()  # and the new fakes went in


def test_replay_buffer_in_training_holds_earlier_g_outputs(face_paths: list[Path]) -> None:
    settings = tiny(tricks=TrickSettings(replay_size=16, replay_share=0.5), ema_decay=0.0)
    trainer = GanTrainer(load_images(face_paths, 16), settings)
    trainer.step()
    stored = trainer.replay.images.clone()
    with torch.no_grad():
        trainer.G.eval()
        assert stored.abs().sum() > 0 and stored.min() >= -1 and stored.max() <= 1  # tanh outputs of G
    trainer.G.train()
    for _ in range(3):
        trainer.step()
    assert trainer.replay.filled == 16


@pytest.mark.parametrize(("schedule", "expected"), [
    ("constant", [0.2, 0.2, 0.2, 0.2, 0.2]),
    ("linear", [0.2, 0.15, 0.1, 0.0, 0.0]),
    ("cyclic", [0.2, 0.15, 0.1, 0.2, 0.15]),
])
def test_instance_noise_std_follows_its_schedule(schedule: str, expected: list[float]) -> None:
    tricks = TrickSettings(instance_noise=0.2, noise_schedule=schedule, noise_steps=100)
    assert [instance_noise_std(tricks, step) for step in (0, 25, 50, 100, 125)] == pytest.approx(expected)
    off = dataclasses.replace(tricks, noise_off_after=50)
    assert instance_noise_std(off, 49) > 0 and instance_noise_std(off, 50) == 0.0
    assert instance_noise_std(TrickSettings(), 0) == 0.0


def test_instance_noise_reaches_d_with_the_scheduled_std(face_paths: list[Path]) -> None:
    settings = tiny(diffaugment="", tricks=TrickSettings(instance_noise=0.5, noise_steps=10))
    trainer = GanTrainer(load_images(face_paths, 16), settings)
    x = torch.zeros(64, 3, 16, 16)
    assert trainer._d_input(x).std().item() == pytest.approx(0.5, rel=0.05)
    trainer.steps_done = 5
    assert trainer._d_input(x).std().item() == pytest.approx(0.25, rel=0.05)
    trainer.steps_done = 10
    assert torch.equal(trainer._d_input(x), x)


def test_ada_probability_moves_with_the_overfitting_signal() -> None:
    ada = AdaController(AdaSettings(target=0.6, interval=1, speed_images=80), batch_size=8, device=torch.device("cpu"))
    for step in range(5):  # D sure every real is real: r_t = 1 > 0.6
        ada.observe(torch.ones(8))
        ada.update(step)
    assert ada.p.item() == pytest.approx(0.5)  # 5 x 8/80
    for step in range(5, 20):  # D unsure: r_t = 0 < 0.6
        ada.observe(torch.tensor([1.0, -1.0] * 4))
        ada.update(step)
    assert ada.p.item() == 0.0  # clamped at 0


def test_ada_probability_rises_when_d_overfits_a_tiny_set(face_paths: list[Path]) -> None:
    settings = tiny(batch_size=4, lr_d=2e-3, diffaugment="", ada=AdaSettings(target=0.6, interval=2, speed_images=200))
    trainer = GanTrainer(load_images(face_paths[:4], 16), settings)
    ps = []
    for _ in range(40):
        values = trainer.step()
        ps.append(values[trainer.metric_names.index("ada_p")].item())
    assert ps[0] == 0.0 and ps[-1] > 0.1 and max(ps) == pytest.approx(ps[-1], abs=0.1)


def test_d_dropout_makes_training_mode_outputs_random_and_eval_outputs_fixed() -> None:
    from facecraft_pipeline.gan import build_discriminator

    d = build_discriminator(GanSettings(resolution=16, base_channels=4, spectral_norm=False, minibatch_std=False,
                                        tricks=TrickSettings(d_dropout=0.5)))
    plain = build_discriminator(GanSettings(resolution=16, base_channels=4, spectral_norm=False, minibatch_std=False))
    assert torch.equal(plain.train()(torch.ones(4, 3, 16, 16)), plain(torch.ones(4, 3, 16, 16)))
    x = torch.randn(4, 3, 16, 16)
    assert not torch.equal(d.train()(x), d(x))
    assert torch.equal(d.eval()(x), d(x))
