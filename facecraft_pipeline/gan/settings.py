"""GAN training settings: one frozen dataclass whose defaults are the small CPU demo."""

from __future__ import annotations

from dataclasses import asdict, dataclass

KINDS = ("dcgan", "wgan_gp")
PRECISIONS = {"no": "float32", "bf16": "bfloat16", "fp16": "float16"}
AUGMENTS = ("color", "translation")

# Fields that change only how often files are written, or how long training runs: a checkpoint
# written under other values of these can still be resumed (a finished run can be extended).
RESUMABLE_FIELDS = ("steps", "checkpoint_every", "sample_every", "log_every", "sample_count")


@dataclass(frozen=True)
class GanSettings:
    """Everything that decides a GAN run. Defaults: a 32 px model that trains in a minute on a CPU.

    `beta1`/`beta2` left as None take the kind's standard Adam betas: DCGAN (0.5, 0.999)
    (Radford et al.), WGAN-GP (0.0, 0.9) (Gulrajani et al.); a number overrides either kind.
    """

    kind: str = "dcgan"  # "dcgan" or "wgan_gp"
    resolution: int = 32  # power of two >= 16; the networks grow one block per doubling
    steps: int = 300  # generator steps
    batch_size: int = 16
    latent_dim: int = 64
    base_channels: int = 32  # channels of the highest-resolution block; x2 per halving, capped at x8
    lr: float = 2e-4
    beta1: float | None = None  # None: 0.5 for dcgan, 0.0 for wgan_gp
    beta2: float | None = None  # None: 0.999 for dcgan, 0.9 for wgan_gp
    n_critic: int = 5  # wgan_gp only: critic steps per generator step
    gp_lambda: float = 10.0  # wgan_gp only
    seed: int = 0
    checkpoint_every: int = 100
    sample_every: int = 100
    log_every: int = 10  # on_metrics cadence (generator steps)
    sample_count: int = 16  # images in each sample grid
    mixed_precision: str = "no"  # "no" | "bf16" | "fp16": autocast on the training device
    label_smoothing: float = 0.1  # dcgan only: one-sided, real targets are 1 - label_smoothing
    flip: bool = True  # random horizontal flips of real faces (faces are near-symmetric)
    diffaugment: str = "color,translation"  # differentiable augmentation of D's inputs ("" = off)
    ema_decay: float = 0.999  # EMA of G's weights used for samples (0 = off); warmed up early on
    channels_last: bool = False  # NHWC memory format: faster convolutions on recent GPUs

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.resolution < 16 or self.resolution & (self.resolution - 1):
            raise ValueError(f"resolution must be a power of two >= 16, got {self.resolution}")
        if self.mixed_precision not in PRECISIONS:
            raise ValueError(f"mixed_precision must be one of {tuple(PRECISIONS)}, got {self.mixed_precision!r}")
        unknown = set(self.augment_ops) - set(AUGMENTS)
        if unknown:
            raise ValueError(f"unknown diffaugment ops {sorted(unknown)}; known: {AUGMENTS}")
        for name in ("steps", "batch_size", "latent_dim", "base_channels", "n_critic", "checkpoint_every",
                     "sample_every", "log_every", "sample_count"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if not 0.0 <= self.label_smoothing < 0.5:
            raise ValueError(f"label_smoothing must be in [0, 0.5), got {self.label_smoothing}")

    @property
    def betas(self) -> tuple[float, float]:
        """Adam betas after applying the kind's defaults."""
        b1, b2 = (0.5, 0.999) if self.kind == "dcgan" else (0.0, 0.9)
        return (b1 if self.beta1 is None else self.beta1, b2 if self.beta2 is None else self.beta2)

    @property
    def augment_ops(self) -> tuple[str, ...]:
        return tuple(op.strip() for op in self.diffaugment.split(",") if op.strip())

    @property
    def dtype_name(self) -> str:
        return PRECISIONS[self.mixed_precision]

    def to_dict(self) -> dict[str, int | float | str | bool | None]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, object]) -> GanSettings:
        """Rebuild from a stored dict, ignoring fields this version no longer has."""
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in values.items() if k in known})  # type: ignore[arg-type]
