"""GAN training settings: frozen dataclasses whose defaults are a modern small-data face GAN.

Defaults follow what worked for small face sets: Upsample+conv G (no checkerboards), spectral-norm
D with minibatch std and dropout, separate learning rates (G 2e-4, D 1e-4, as the conditional-face
project used), DiffAugment color+translation+cutout, EMA of G. `arch="dcgan"` with the tricks off
is the 2015 DCGAN (the benchmark's reference setting).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from facecraft_pipeline.settings import from_dict, nested, setting, to_dict, validate
from facecraft_pipeline.training.settings import RunSettings

KINDS = ("dcgan", "wgan_gp")
ARCHS = ("dcgan", "upsample", "resnet")
LOSSES = ("auto", "bce", "hinge", "wgan")
AUGMENTS = ("color", "translation", "cutout")
NOISE_SCHEDULES = ("linear", "cyclic", "constant")
CONTROLS = ("yaw", "pitch", "roll", "mouth_open", "eyes_open", "brightness")
CONDITIONS = ("none", "identity")
RECOMMENDED_IMAGES = 20  # fewer distinct training images than this still train, with a warning


@dataclass(frozen=True)
class TrickSettings:
    """GAN-hacks that keep D from winning too early (Salimans et al. 2016, Soumith's ganhacks)."""

    instance_noise: float = setting(0.0, "std of Gaussian noise added to D's inputs at step 0 (0 = off)", minimum=0)
    noise_schedule: str = setting("linear", "instance noise std over time: linear (decays to 0), cyclic (decays, restarts), constant",
                                  choices=NOISE_SCHEDULES)
    noise_steps: int = setting(2000, "steps over which the noise decays (one cycle for cyclic); off after this for linear", minimum=1)
    noise_off_after: int = setting(0, "no instance noise from this step on (0 = never switched off)", minimum=0)
    replay_size: int = setting(0, "fakes kept in a replay buffer of earlier G outputs shown to D (0 = off)", minimum=0)
    replay_share: float = setting(0.5, "share of each fake batch D sees that comes from the replay buffer", minimum=0, maximum=1)
    label_smoothing: float = setting(0.1, "bce: one-sided label smoothing, real targets are 1 - this", minimum=0, maximum=0.49)
    label_flip: float = setting(0.0, "bce: share of D's labels flipped at random (real<->fake)", minimum=0, maximum=0.5)
    d_dropout: float = setting(0.0, "dropout after each D block", minimum=0, maximum=0.9)


@dataclass(frozen=True)
class AdaSettings:
    """Adaptive augmentation (Karras et al. 2020): p follows D's overfitting signal r_t = E[sign(D(real))]."""

    target: float = setting(0.0, "r_t target (0.6 in the paper); 0 = adaptive augmentation off", minimum=0, maximum=1)
    interval: int = setting(4, "steps between adjustments of p", minimum=1)
    speed_images: int = setting(5000, "real images over which p can move from 0 to 1", minimum=1)
    max_p: float = setting(0.8, "upper bound of p (above ~0.8 augmentations leak into G)", minimum=0, maximum=1)
    ops: str = setting("flip,translation,color,cutout", "ops applied with probability p: comma list of flip, translation, color, cutout")


@dataclass(frozen=True)
class GanSettings:
    """Everything that decides a GAN run.

    `beta1`/`beta2` left empty take the loss's standard Adam betas: bce/hinge (0.5, 0.999)
    (Radford et al.), wgan (0.0, 0.9) (Gulrajani et al.); a number overrides either.
    """

    condition: str = setting("none", "none: G learns the owner's faces alone; identity: G and D conditioned on each face's identity "
                                     "embedding, trained on every person in the library, sampled for the owner", choices=CONDITIONS)
    kind: str = setting("dcgan", "dcgan (discriminator, bce/hinge loss) or wgan_gp (critic, gradient penalty)", choices=KINDS)
    arch: str = setting("upsample", "dcgan (ConvTranspose, 2015), upsample (Upsample+conv, no checkerboards) or resnet", choices=ARCHS)
    loss: str = setting("auto", "auto (bce for dcgan, wgan for wgan_gp), bce (non-saturating), hinge or wgan", choices=LOSSES)
    resolution: int = setting(64, "image side in px: 16, 32, 64, 128 or 256", choices=(16, 32, 64, 128, 256))
    batch_size: int = setting(16, "real images per discriminator step", minimum=1)
    latent_dim: int = setting(64, "length of the latent vector z", minimum=1)
    base_channels: int = setting(32, "channels of the highest-resolution block; x2 per halving, capped at x8", minimum=1)
    lr_g: float = setting(2e-4, "generator Adam learning rate", minimum=0, exclusive=True)
    lr_d: float = setting(1e-4, "discriminator/critic Adam learning rate", minimum=0, exclusive=True)
    beta1: float | None = setting(None, "Adam beta1; empty: 0.5 (bce, hinge) or 0.0 (wgan)", minimum=0, maximum=1)
    beta2: float | None = setting(None, "Adam beta2; empty: 0.999 (bce, hinge) or 0.9 (wgan)", minimum=0, maximum=1)
    n_critic: int = setting(5, "wgan_gp: critic steps per generator step", minimum=1)
    gp_lambda: float = setting(10.0, "wgan_gp: weight of the gradient penalty", minimum=0)
    gp_every: int = setting(1, "wgan_gp: take the gradient penalty every this many critic steps, weighted by it (lazy; 1 = every step)",
                            minimum=1)
    gp_batch: int = setting(0, "wgan_gp: interpolates per critic step (per process when data-parallel) for the gradient penalty, "
                                "the first of the batch (0 = one per real image; fewer costs less of the double backward)", minimum=0)
    r1_gamma: float = setting(0.0, "R1 penalty gamma/2 * E||grad D(real)||^2 on D (0 = off; ~0.1-10)", minimum=0)
    attention_res: int = setting(0, "feature-map side with self-attention in G and D (0 = none; e.g. 32)", minimum=0)
    spectral_norm: bool = setting(True, "spectral norm on D's layers (replaces its BatchNorm)")
    spectral_norm_g: bool = setting(False, "spectral norm on G's layers too (SAGAN)")
    minibatch_std: bool = setting(True, "minibatch standard deviation channel before D's last block")
    flip: bool = setting(True, "random horizontal flips of real faces")
    diffaugment: str = setting("color,translation,cutout",
                               "differentiable augmentation of D's inputs: comma list of color, translation, cutout ('' = off)")
    ema_decay: float = setting(0.999, "EMA of G's weights used for samples (0 = off; warmed up early on)", minimum=0, maximum=0.99999)
    grow: str = setting("", "progressive growing: 'side:steps,...' e.g. '16:500,32:500,64:0' (last stage runs to the end; '' = off)")
    grow_freeze: float = setting(0.5, "share of each new stage trained with the earlier layers frozen, before fine-tuning all",
                                 minimum=0, maximum=1)
    controls: str = setting("", f"face attributes G is conditioned on, learned by an auxiliary D head (AC-GAN): comma list of {', '.join(CONTROLS)}")
    control_weight: float = setting(1.0, "weight of the auxiliary control loss in D and G", minimum=0)
    warm_start: bool = setting(True, "when the images changed (photos added), start from the newest finished run of these settings "
                                     "and train warm_start_steps instead of run.steps")
    warm_start_steps: int = setting(0, "steps of a warm-started run (0: a quarter of run.steps)", minimum=0, run_key=False)
    tricks: TrickSettings = nested(TrickSettings, "instance noise, replay buffer, label smoothing and flips, D dropout")
    ada: AdaSettings = nested(AdaSettings, "adaptive augmentation driven by D's overfitting signal")
    sample_count: int = setting(16, "images in each sample grid", minimum=1, run_key=False)
    quality_every: int = setting(0, "steps between quality scores (KID on face embeddings, faces found, owner similarity); "
                                    "scored at the sample steps that are multiples of it; 0 = off", minimum=0, run_key=False)
    quality_samples: int = setting(32, "generated images scored each time", minimum=2, run_key=False)
    channels_last: bool = setting(False, "NHWC memory format: faster convolutions on recent GPUs", run_key=False)
    compile: bool = setting(False, "torch.compile G and D (CUDA: faster after a warm-up; no gain on CPU)", run_key=False)
    run: RunSettings = nested(RunSettings, "length, cadence, retention, seed and precision of the run")

    def __post_init__(self) -> None:
        validate(self)
        for name, ops, allowed in (("diffaugment", self.augment_ops, AUGMENTS), ("ada.ops", self.ada_ops, ("flip", *AUGMENTS)),
                                   ("controls", self.control_names, CONTROLS)):
            unknown = set(ops) - set(allowed)
            if unknown:
                raise ValueError(f"GanSettings.{name} has unknown entries {sorted(unknown)}; allowed: {list(allowed)}")
        if self.attention_res and (self.attention_res & (self.attention_res - 1) or not 8 <= self.attention_res < self.resolution):
            raise ValueError(f"GanSettings.attention_res must be 0 or a power of two in [8, {self.resolution // 2}], got {self.attention_res}")
        if self.gp_batch > self.batch_size:
            raise ValueError(f"GanSettings.gp_batch must be 0 or at most batch_size={self.batch_size}, got {self.gp_batch}")
        if self.condition == "identity" and self.tricks.replay_size:
            raise ValueError("GanSettings.tricks.replay_size must be 0 with condition 'identity' (replayed fakes carry no identity)")
        if self.loss_kind == "wgan" and self.kind != "wgan_gp":
            raise ValueError("GanSettings.loss 'wgan' needs kind 'wgan_gp' (a critic with a gradient penalty)")
        sides = self.grow_sides
        if self.grow and (sides != sorted(set(sides)) or sides[-1] != self.resolution or sides[0] < 8
                          or any(s & (s - 1) for s in sides)):
            raise ValueError(f"GanSettings.grow must list rising powers of two >= 8 ending at resolution {self.resolution}, "
                             f"like '16:500,32:500,{self.resolution}:0', got {self.grow!r}")

    @property
    def warm_steps(self) -> int:
        """Steps a warm-started run trains (0: warm start off)."""
        return 0 if not self.warm_start else (self.warm_start_steps or max(1, self.run.steps // 4))

    @property
    def loss_kind(self) -> str:
        if self.loss != "auto":
            return self.loss
        return "wgan" if self.kind == "wgan_gp" else "bce"

    @property
    def betas(self) -> tuple[float, float]:
        """Adam betas after applying the loss's defaults."""
        b1, b2 = (0.0, 0.9) if self.loss_kind == "wgan" else (0.5, 0.999)
        return (b1 if self.beta1 is None else self.beta1, b2 if self.beta2 is None else self.beta2)

    @property
    def augment_ops(self) -> tuple[str, ...]:
        return _names(self.diffaugment)

    @property
    def ada_ops(self) -> tuple[str, ...]:
        return _names(self.ada.ops)

    @property
    def control_names(self) -> tuple[str, ...]:
        return _names(self.controls)

    @property
    def grow_stages(self) -> tuple[tuple[int, int], ...]:
        """((side, steps), ...) of progressive growing; ((resolution, 0),) when off."""
        if not self.grow.strip():
            return ((self.resolution, 0),)
        try:
            return tuple((int(side), int(steps)) for side, _, steps in (part.strip().partition(":") for part in self.grow.split(",")))
        except ValueError:
            raise ValueError(f"GanSettings.grow must look like '16:500,32:500,64:0', got {self.grow!r}") from None

    @property
    def grow_sides(self) -> list[int]:
        return [side for side, _ in self.grow_stages]

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> GanSettings:
        """Rebuild from a stored dict, ignoring fields this version no longer has."""
        return from_dict(cls, values)


def _names(text: str) -> tuple[str, ...]:
    return tuple(op.strip() for op in text.split(",") if op.strip())
