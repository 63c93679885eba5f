from __future__ import annotations

import json
import math

import pytest
import torch

from facecraft_pipeline.gan import train_gan
from facecraft_pipeline.gan.losses import dcgan_d_loss, dcgan_g_loss, gradient_penalty, wgan_d_loss, wgan_g_loss
from facecraft_pipeline_tests.gan.conftest import drawn_faces, tiny


def linear_critic(norm: float) -> tuple[torch.Tensor, object]:
    """D(x) = <w, x> with ||w||_2 = norm: its input gradient is w everywhere."""
    w = torch.randn(3, 8, 8, generator=torch.Generator().manual_seed(0))
    w = (w * norm / w.norm()).requires_grad_(True)
    return w, lambda x: (x * w).flatten(1).sum(1)


@pytest.mark.parametrize(("norm", "penalty"), [(1.0, 0.0), (2.0, 1.0), (3.0, 4.0), (0.5, 0.25)])
def test_gradient_penalty_of_a_linear_critic_is_squared_distance_of_its_norm_from_one(norm: float, penalty: float) -> None:
    _, critic = linear_critic(norm)
    real, fake = torch.randn(6, 3, 8, 8), torch.randn(6, 3, 8, 8)
    assert gradient_penalty(critic, real, fake).item() == pytest.approx(penalty, abs=1e-5)


def test_gradient_penalty_trains_the_critic_through_double_backward() -> None:
    w, critic = linear_critic(2.0)
    gradient_penalty(critic, torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)).backward()
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||
    expected = 2 * (2.0 - 1) * w.detach() / 2.0
    assert torch.allclose(w.grad, expected, atol=1e-5)


def test_gradient_penalty_does_not_backpropagate_into_the_generator() -> None:
    _, critic = linear_critic(2.0)
    fake = torch.randn(4, 3, 8, 8, requires_grad=True)
    gradient_penalty(critic, torch.randn(4, 3, 8, 8), fake).backward()
    assert fake.grad is None


def test_label_smoothing_makes_the_real_target_one_minus_s() -> None:
    s = 0.1
    real = torch.full((4,), math.log((1 - s) / s), requires_grad=True)  # sigmoid(real) == 1 - s
    dcgan_d_loss(real, torch.zeros(4), label_smoothing=s).backward()
    assert real.grad.abs().max() < 1e-6
    real_unsmoothed = real.detach().clone().requires_grad_(True)
    dcgan_d_loss(real_unsmoothed, torch.zeros(4)).backward()
    assert (real_unsmoothed.grad < 0).all()  # without smoothing D is still pushed towards 1


def test_non_saturating_generator_loss_keeps_a_gradient_when_the_discriminator_wins() -> None:
    fake = torch.full((4,), -10.0, requires_grad=True)  # D is sure these are fake
    dcgan_g_loss(fake).backward()
    assert (fake.grad < -0.2 / 4).all()


def test_wasserstein_losses_are_score_differences() -> None:
    real, fake = torch.tensor([3.0, 5.0]), torch.tensor([1.0, -1.0])
    assert wgan_d_loss(real, fake).item() == pytest.approx(0.0 - 4.0)
    assert wgan_g_loss(fake).item() == pytest.approx(0.0)


@pytest.mark.parametrize("norm", [0.5, 1.0, 3.0])
def test_r1_of_a_linear_critic_is_its_squared_gradient_norm(norm: float) -> None:
    from facecraft_pipeline.gan.losses import r1_penalty

    _, critic = linear_critic(norm)
    assert r1_penalty(critic, torch.randn(5, 3, 8, 8)).item() == pytest.approx(norm**2, rel=1e-5)


def test_r1_of_a_quadratic_critic_is_the_mean_squared_norm_of_the_reals_and_trains_it() -> None:
    from facecraft_pipeline.gan.losses import r1_penalty

    a = torch.tensor(1.5, requires_grad=True)
    real = torch.randn(4, 3, 8, 8)
    penalty = r1_penalty(lambda x: a * (x**2).flatten(1).sum(1) / 2, real)  # grad_x = a x
    expected = (a.detach() ** 2) * real.flatten(1).pow(2).sum(1).mean()
    assert penalty.item() == pytest.approx(expected.item(), rel=1e-5)
    penalty.backward()  # d/da a^2 E||x||^2 = 2 a E||x||^2
    assert a.grad.item() == pytest.approx(2 * 1.5 * real.flatten(1).pow(2).sum(1).mean().item(), rel=1e-5)


def test_hinge_losses_match_hand_computed_values() -> None:
    from facecraft_pipeline.gan.losses import hinge_d_loss, hinge_g_loss

    real, fake = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([-2.0, 0.0, 1.0])
    # real: max(0, 1 - r) = 0, 0.5, 2 -> mean 2.5/3; fake: max(0, 1 + f) = 0, 1, 2 -> mean 1
    assert hinge_d_loss(real, fake).item() == pytest.approx(2.5 / 3 + 1.0)
    assert hinge_g_loss(fake).item() == pytest.approx(1.0 / 3 * -(-2.0 + 0.0 + 1.0))


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.3])
def test_label_flips_happen_at_the_set_rate(rate: float) -> None:
    n = 20_000
    real, fake = torch.zeros(n, requires_grad=True), torch.zeros(n, requires_grad=True)
    dcgan_d_loss(real, fake, label_smoothing=0.1, flip_rate=rate, generator=torch.Generator().manual_seed(0)).backward()
    # d BCE / d logit = (sigmoid(0) - target) / n: a real labelled fake (target 0) gets a positive gradient
    real_flipped = (real.grad > 0).float().mean().item()
    fake_flipped = (fake.grad < 0).float().mean().item()  # a fake labelled real (target 0.9)
    assert real_flipped == pytest.approx(rate, abs=0.01) and fake_flipped == pytest.approx(rate, abs=0.01)


def test_a_lazy_gradient_penalty_is_taken_every_gp_every_critic_steps(tmp_path) -> None:
    faces = drawn_faces(tmp_path / "faces", 8, (32, 32))
    every = train_gan(faces, tmp_path / "a", tiny(kind="wgan_gp", n_critic=2, steps=4, checkpoint_every=4, log_every=1, sample_every=0))
    lazy = train_gan(faces, tmp_path / "b", tiny(kind="wgan_gp", n_critic=2, gp_every=4, steps=4, checkpoint_every=4, log_every=1,
                                                  sample_every=0))
    gps = [json.loads(line)["gp"] for line in (lazy.folder / "stats.jsonl").read_text().splitlines()]
    assert gps[0] == gps[1] and gps[2] == gps[3] and gps[1] != gps[2]  # taken at critic steps 0 and 4 only, logged between
    assert every.key != lazy.key


def test_a_gradient_penalty_on_part_of_the_batch_trains_and_all_of_it_is_the_default(tmp_path) -> None:
    faces = drawn_faces(tmp_path / "faces", 8, (32, 32))
    common = {"kind": "wgan_gp", "n_critic": 2, "steps": 3, "checkpoint_every": 3, "log_every": 1, "sample_every": 0}
    runs = {k: train_gan(faces, tmp_path / str(k), tiny(gp_batch=k, **common)) for k in (0, 2)}
    whole = tiny(**common).batch_size
    same_as_whole = train_gan(faces, tmp_path / "whole", tiny(gp_batch=whole, **common))
    stats = {k: [json.loads(line)["gp"] for line in (r.folder / "stats.jsonl").read_text().splitlines()]
             for k, r in {**runs, "whole": same_as_whole}.items()}
    assert stats["whole"] == stats[0]  # gp_batch = batch_size is the whole batch, as 0 is
    assert stats[2] != stats[0] and all(math.isfinite(v) for v in stats[2])
    with pytest.raises(ValueError, match=f"GanSettings.gp_batch must be 0 or at most batch_size={whole}"):
        tiny(gp_batch=whole + 1, **common)
