from __future__ import annotations

import pytest
import torch
from torch import nn

from facecraft_pipeline.training import RunSettings
from facecraft_pipeline.gan import GanSettings, build_discriminator, build_generator


@pytest.mark.parametrize("resolution", [16, 32, 64, 128, 256])
def test_generator_makes_images_of_the_resolution_in_tanh_range(resolution: int) -> None:
    settings = GanSettings(resolution=resolution, base_channels=4, latent_dim=8)
    images = build_generator(settings)(torch.randn(3, 8))
    assert images.shape == (3, 3, resolution, resolution)
    assert images.min() >= -1 and images.max() <= 1
    assert images.std() > 0


@pytest.mark.parametrize("kind", ["dcgan", "wgan_gp"])
@pytest.mark.parametrize("resolution", [16, 32, 64, 128])
def test_discriminator_gives_one_score_per_image(kind: str, resolution: int) -> None:
    settings = GanSettings(kind=kind, resolution=resolution, base_channels=4)
    assert build_discriminator(settings)(torch.randn(5, 3, resolution, resolution)).shape == (5,)


@pytest.mark.parametrize("arch", ["dcgan", "upsample", "resnet"])
def test_networks_grow_one_block_per_doubling_with_capped_channels(arch: str) -> None:
    def convs(module: nn.Module) -> list[nn.Module]:
        return [m for m in module.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]

    small, large = GanSettings(arch=arch, resolution=32), GanSettings(arch=arch, resolution=256)
    per_block = 3 if arch == "resnet" else 1  # two convs and a skip
    assert len(convs(build_generator(large))) - len(convs(build_generator(small))) == 3 * per_block
    assert len(convs(build_discriminator(large))) - len(convs(build_discriminator(small))) == 3 * per_block
    widest = max(m.out_channels for m in convs(build_generator(large)))
    assert widest == 8 * large.base_channels


def test_upsample_and_resnet_generators_have_no_transposed_convolutions_but_dcgan_does() -> None:
    def transposed(arch: str) -> int:
        return sum(isinstance(m, nn.ConvTranspose2d) for m in build_generator(GanSettings(arch=arch)).modules())

    assert transposed("dcgan") == 5 and transposed("upsample") == 0 and transposed("resnet") == 0


def test_self_attention_sits_at_the_chosen_side_in_g_and_d() -> None:
    settings = GanSettings(resolution=64, base_channels=4, attention_res=16)
    g, d = build_generator(settings), build_discriminator(settings)
    assert list(g.attention) == ["16"] and list(d.attention) == ["32"]  # D: after the block that makes 16x16
    seen: list[tuple[int, ...]] = []
    g.attention["16"].register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape[2:])))
    d.attention["32"].register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape[2:])))
    d(g(torch.randn(2, settings.latent_dim)))
    assert seen == [(16, 16), (16, 16)]


def test_spectral_norm_keeps_the_largest_singular_value_near_one() -> None:
    d = build_discriminator(GanSettings(resolution=16, base_channels=4, spectral_norm=True))
    d.train()
    for _ in range(30):  # power iterations run in training-mode forwards
        d(torch.randn(4, 3, 16, 16))
    conv = next(m for m in d.modules() if isinstance(m, nn.Conv2d) and hasattr(m, "parametrizations"))
    sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
    assert sigma == pytest.approx(1.0, abs=0.05)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in d.modules())


def test_minibatch_std_tells_d_about_the_batch_spread() -> None:
    from facecraft_pipeline.gan.models import MinibatchStd

    same = MinibatchStd()(torch.ones(8, 2, 4, 4))
    spread = MinibatchStd()(torch.randn(8, 2, 4, 4))
    assert same.shape == (8, 3, 4, 4) and same[:, 2].abs().max() < 1e-3 and spread[:, 2].min() > 0.3


def test_wgan_critic_has_no_batchnorm_but_the_plain_dcgan_discriminator_does() -> None:
    def has_batchnorm(**kw: object) -> bool:
        return any(isinstance(m, nn.BatchNorm2d) for m in build_discriminator(GanSettings(**kw)).modules())  # type: ignore[arg-type]

    assert not has_batchnorm(kind="wgan_gp", spectral_norm=False)
    assert has_batchnorm(kind="dcgan", arch="dcgan", spectral_norm=False)
    assert not has_batchnorm(kind="dcgan", spectral_norm=True)


def test_initialisation_is_seeded() -> None:
    same = [build_generator(GanSettings(run=RunSettings(seed=3))).state_dict() for _ in range(2)]
    other = build_generator(GanSettings(run=RunSettings(seed=4))).state_dict()
    assert all(torch.equal(same[0][k], same[1][k]) for k in same[0])
    assert not torch.equal(same[0]["stem.0.weight"], other["stem.0.weight"])


def test_generator_contract_for_the_explorer() -> None:
    settings = GanSettings(resolution=32, base_channels=4, latent_dim=8, controls="yaw,brightness")
    g = build_generator(settings).eval()
    assert (g.latent_dim, g.resolution, g.control_names) == (8, 32, ("yaw", "brightness"))
    z = torch.randn(3, 8)
    assert torch.equal(g(z), g(z, torch.zeros(3, 2)))  # None = the default (zeros until a dataset mean is set)
    assert not torch.equal(g(z, torch.ones(3, 2)), g(z))
    seen: list[torch.Size] = []
    g.feature_layer.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    g(z)
    assert seen and seen[0][2:] == (8, 8)


@pytest.mark.parametrize("bad", [dict(resolution=48), dict(resolution=8), dict(kind="stylegan"), dict(arch="stylegan"),
                                 dict(diffaugment="rotate"), dict(batch_size=0), dict(lr_g=0.0), dict(lr_d=-1.0),
                                 dict(ema_decay=1.0), dict(attention_res=12), dict(attention_res=64), dict(loss="wgan"),
                                 dict(controls="smile"), dict(grow="16:10,32:10"), dict(grow="32:10,16:0,64:0"),
                                 dict(grow="abc")])
def test_settings_reject_values_that_cannot_train(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        GanSettings(**bad)  # type: ignore[arg-type]


def test_adam_betas_follow_the_loss_unless_given() -> None:
    assert GanSettings(kind="dcgan").betas == (0.5, 0.999)
    assert GanSettings(kind="dcgan", loss="hinge").betas == (0.5, 0.999)
    assert GanSettings(kind="wgan_gp").betas == (0.0, 0.9)
    assert GanSettings(kind="wgan_gp", beta1=0.5).betas == (0.5, 0.9)


def test_separate_learning_rates_default_to_the_conditional_face_recipe() -> None:
    assert (GanSettings().lr_g, GanSettings().lr_d) == (2e-4, 1e-4)


def test_settings_errors_name_the_field_and_the_allowed_values() -> None:
    with pytest.raises(ValueError, match=r"GanSettings.kind must be one of \['dcgan', 'wgan_gp'\], got 'stylegan'"):
        GanSettings(kind="stylegan")
    with pytest.raises(ValueError, match=r"GanSettings.resolution must be one of \[16, 32, 64, 128, 256\], got 48"):
        GanSettings(resolution=48)
    with pytest.raises(ValueError, match=r"GanSettings.grow must list rising powers of two >= 8 ending at resolution 64"):
        GanSettings(grow="16:10,32:10")
    with pytest.raises(ValueError, match=r"RunSettings.mixed_precision must be one of \['no', 'bf16', 'fp16'\]"):
        RunSettings(mixed_precision="fp8")
    with pytest.raises(ValueError, match=r"RunSettings.steps must be >= 1"):
        RunSettings(steps=0)
