"""GAN training settings: one frozen dataclass whose defaults are the small CPU demo."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from facecraft_pipeline.settings import from_dict, nested, setting, to_dict, validate
from facecraft_pipeline.training.settings import RunSettings

KINDS = ("dcgan", "wgan_gp")
AUGMENTS = ("color", "translation")


@dataclass(frozen=True)
class GanSettings:
    """Everything that decides a GAN run. Defaults: a 32 px model that trains in a minute on a CPU.

    `beta1`/`beta2` left empty take the kind's standard Adam betas: DCGAN (0.5, 0.999)
    (Radford et al.), WGAN-GP (0.0, 0.9) (Gulrajani et al.); a number overrides either kind.
    """

    kind: str = setting("dcgan", "dcgan (BCE, BatchNorm) or wgan_gp (critic, gradient penalty)", choices=KINDS)
    resolution: int = setting(32, "image side in px: a power of two >= 16; the networks grow one block per doubling", minimum=16)
    batch_size: int = setting(16, "real images per discriminator step", minimum=1)
    latent_dim: int = setting(64, "length of the latent vector z", minimum=1)
    base_channels: int = setting(32, "channels of the highest-resolution block; x2 per halving, capped at x8", minimum=1)
    lr: float = setting(2e-4, "Adam learning rate of G and D", minimum=0, exclusive=True)
    beta1: float | None = setting(None, "Adam beta1; empty: 0.5 for dcgan, 0.0 for wgan_gp", minimum=0, maximum=1)
    beta2: float | None = setting(None, "Adam beta2; empty: 0.999 for dcgan, 0.9 for wgan_gp", minimum=0, maximum=1)
    n_critic: int = setting(5, "wgan_gp: critic steps per generator step", minimum=1)
    gp_lambda: float = setting(10.0, "wgan_gp: weight of the gradient penalty", minimum=0)
    sample_count: int = setting(16, "images in each sample grid", minimum=1, run_key=False)
    label_smoothing: float = setting(0.1, "dcgan: one-sided label smoothing, real targets are 1 - this", minimum=0, maximum=0.49)
    flip: bool = setting(True, "random horizontal flips of real faces")
    diffaugment: str = setting("color,translation", "differentiable augmentation of D's inputs: comma list of color, translation ('' = off)")
    ema_decay: float = setting(0.999, "EMA of G's weights used for samples (0 = off; warmed up early on)", minimum=0, maximum=0.99999)
    channels_last: bool = setting(False, "NHWC memory format: faster convolutions on recent GPUs", run_key=False)
    run: RunSettings = nested(RunSettings, "length, cadence, retention, seed and precision of the run")

    def __post_init__(self) -> None:
        validate(self)
        if self.resolution & (self.resolution - 1):
            raise ValueError(f"GanSettings.resolution must be a power of two >= 16, got {self.resolution}")
        unknown = set(self.augment_ops) - set(AUGMENTS)
        if unknown:
            raise ValueError(f"GanSettings.diffaugment has unknown ops {sorted(unknown)}; allowed: {list(AUGMENTS)}")

    @property
    def betas(self) -> tuple[float, float]:
        """Adam betas after applying the kind's defaults."""
        b1, b2 = (0.5, 0.999) if self.kind == "dcgan" else (0.0, 0.9)
        return (b1 if self.beta1 is None else self.beta1, b2 if self.beta2 is None else self.beta2)

    @property
    def augment_ops(self) -> tuple[str, ...]:
        return tuple(op.strip() for op in self.diffaugment.split(",") if op.strip())

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> GanSettings:
        """Rebuild from a stored dict, ignoring fields this version no longer has."""
        return from_dict(cls, values)
