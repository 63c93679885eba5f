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


def test_networks_grow_one_block_per_doubling_with_capped_channels() -> None:
    def convs(module: nn.Module) -> list[nn.Module]:
        return [m for m in module.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]

    small, large = GanSettings(resolution=32), GanSettings(resolution=256)
    assert len(convs(build_generator(large))) - len(convs(build_generator(small))) == 3
    assert len(convs(build_discriminator(large))) - len(convs(build_discriminator(small))) == 3
    widest = max(m.out_channels for m in convs(build_generator(large)))
    assert widest == 8 * large.base_channels


def test_wgan_critic_has_no_batchnorm_but_dcgan_discriminator_does() -> None:
    def has_batchnorm(kind: str) -> bool:
        return any(isinstance(m, nn.BatchNorm2d) for m in build_discriminator(GanSettings(kind=kind)).modules())

    assert not has_batchnorm("wgan_gp")
    assert has_batchnorm("dcgan")


def test_initialisation_is_seeded() -> None:
    same = [build_generator(GanSettings(run=RunSettings(seed=3))).state_dict() for _ in range(2)]
    other = build_generator(GanSettings(run=RunSettings(seed=4))).state_dict()
    assert all(torch.equal(same[0][k], same[1][k]) for k in same[0])
    assert not torch.equal(same[0]["net.0.weight"], other["net.0.weight"])


@pytest.mark.parametrize("bad", [dict(resolution=48), dict(resolution=8), dict(kind="stylegan"),
                                 dict(diffaugment="cutout"), dict(batch_size=0), dict(lr=0.0),
                                 dict(ema_decay=1.0)])
def test_settings_reject_values_that_cannot_train(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        GanSettings(**bad)  # type: ignore[arg-type]


def test_adam_betas_follow_the_kind_unless_given() -> None:
    assert GanSettings(kind="dcgan").betas == (0.5, 0.999)
    assert GanSettings(kind="wgan_gp").betas == (0.0, 0.9)
    assert GanSettings(kind="wgan_gp", beta1=0.5).betas == (0.5, 0.9)


def test_settings_errors_name_the_field_and_the_allowed_values() -> None:
    with pytest.raises(ValueError, match=r"GanSettings.kind must be one of \['dcgan', 'wgan_gp'\], got 'stylegan'"):
        GanSettings(kind="stylegan")
    with pytest.raises(ValueError, match=r"RunSettings.mixed_precision must be one of \['no', 'bf16', 'fp16'\]"):
        RunSettings(mixed_precision="fp8")
    with pytest.raises(ValueError, match=r"RunSettings.steps must be >= 1"):
        RunSettings(steps=0)
