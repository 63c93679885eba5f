"""The GAN trainer (DCGAN or WGAN-GP): model, loss and step; the run protocol is `training.train`.

Every random draw of training (batches, flips, augmentation, latents, interpolation weights)
comes from one torch.Generator on the device whose state is checkpointed, and the networks are
initialised from the seed, so an interrupted run that resumes ends with the same weights as an
uninterrupted one (bit for bit on CPU).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from facecraft_pipeline.digest import files_digest
from facecraft_pipeline.gan.augment import diff_augment, random_flip
from facecraft_pipeline.gan.checkpoint import FORMAT
from facecraft_pipeline.gan.losses import dcgan_d_loss, dcgan_g_loss, gradient_penalty, wgan_d_loss, wgan_g_loss
from facecraft_pipeline.gan.models import build_discriminator, build_generator
from facecraft_pipeline.gan.sample import sample_images, write_gif, write_grid
from facecraft_pipeline.gan.settings import GanSettings
from facecraft_pipeline.training import Progress, RunFolder, TrainResult, run_key, train
from facecraft_pipeline.training.images import load_images, to_float
from facecraft_pipeline.training.loop import RunSpec
from facecraft_pipeline.training.precision import autocast, dtype_name, grad_scaler

RECIPE_VERSION = 2  # bump when the training maths changes: old runs then get a new key
METRIC_NAMES = {"dcgan": ("loss_d", "loss_g", "d_real", "d_fake"), "wgan_gp": ("loss_d", "loss_g", "gp", "wasserstein")}


def train_gan(image_paths: Sequence[Path], root: Path, settings: GanSettings, device: torch.device | str = "cpu",
              progress: Sequence[Progress] = ()) -> TrainResult:
    """Train (or reuse, resume, extend) into `root/<n>-<kind>-<px>-<key>/`.

    Artifacts: checkpoint (the final state, loadable by `load_generator`), samples (grid),
    gif (the grids of the run, animated). Image order does not matter.
    """
    device = torch.device(device)
    paths = sorted(Path(p) for p in image_paths)
    if len(paths) < 1:
        raise ValueError("GAN training needs at least one image")
    digest = files_digest(paths)
    spec = RunSpec(
        root=Path(root),
        key=run_key(digest, settings, RECIPE_VERSION),
        description=f"{settings.kind}-{settings.resolution}px",
        run=settings.run,
        info={"settings": settings.to_dict(), "inputs": {"images": len(paths), "digest": digest},
              "device": str(device), "dtype": dtype_name(settings.run.mixed_precision), "recipe": RECIPE_VERSION,
              "versions": {"torch": torch.__version__}},
    )
    return train(spec, lambda: GanTrainer(load_images(paths, settings.resolution), settings, device, digest), progress, device)


class GanTrainer:
    """G, D (or critic), their optimizers, an optional EMA of G, and one step of the game."""

    def __init__(self, images: torch.Tensor, settings: GanSettings, device: torch.device, data_digest: str = ""):
        self.settings, self.device, self.data_digest = settings, device, data_digest
        run = settings.run
        self.wgan = settings.kind == "wgan_gp"
        self.metric_names = METRIC_NAMES[settings.kind]
        self.n_d = settings.n_critic if self.wgan else 1
        self.images_per_step = settings.batch_size * self.n_d
        self.fmt = torch.channels_last if settings.channels_last else torch.contiguous_format
        self.images = images.to(device)
        self.G = build_generator(settings).to(device, memory_format=self.fmt)
        self.D = build_discriminator(settings).to(device, memory_format=self.fmt)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False) if settings.ema_decay > 0 else None
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=settings.lr, betas=settings.betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=settings.lr, betas=settings.betas)
        self.scaler_g, self.scaler_d = grad_scaler(device, run.mixed_precision), grad_scaler(device, run.mixed_precision)
        self.rng = torch.Generator(device=device).manual_seed(run.seed)
        self.steps_done = 0
        self.G.train()
        self.D.train()

    # -- one step ---------------------------------------------------------------------------------

    def step(self) -> torch.Tensor:
        s = self.settings
        for _ in range(self.n_d):
            loss_d, extra = self._d_step()
        self.D.requires_grad_(False)  # G step: no weight gradients for D
        with self._autocast():
            loss_g = (wgan_g_loss if self.wgan else dcgan_g_loss)(self.D(self._augment(self.G(self._latents()))))
        self._apply(self.opt_g, self.scaler_g, loss_g)
        self.D.requires_grad_(True)
        if self.G_ema is not None:  # warm-up: early on the average would mostly remember the random init
            self._update_ema(min(s.ema_decay, (1 + self.steps_done) / (10 + self.steps_done)))
        self.steps_done += 1
        return torch.stack([loss_d.detach(), loss_g.detach(), *extra])

    def _d_step(self) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        s = self.settings
        real = self._real_batch()
        with torch.no_grad(), self._autocast():
            fake = self.G(self._latents())
        with self._autocast():
            real_aug, fake_aug = self._augment(real), self._augment(fake)
            real_out, fake_out = self.D(real_aug), self.D(fake_aug)
            if self.wgan:
                gp = gradient_penalty(self.D, real_aug, fake_aug, self.rng)
                loss = wgan_d_loss(real_out, fake_out) + s.gp_lambda * gp
                extra = (gp.detach(), (real_out.mean() - fake_out.mean()).detach())
            else:
                loss = dcgan_d_loss(real_out, fake_out, s.label_smoothing)
                extra = (torch.sigmoid(real_out).mean().detach(), torch.sigmoid(fake_out).mean().detach())
        self._apply(self.opt_d, self.scaler_d, loss)
        return loss, extra

    def _apply(self, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, loss: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    @torch.no_grad()
    def _update_ema(self, decay: float) -> None:
        assert self.G_ema is not None
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters(), strict=True):
            p_ema.lerp_(p, 1 - decay)
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers(), strict=True):
            b_ema.copy_(b)

    def _autocast(self):
        return autocast(self.device, self.settings.run.mixed_precision)

    def _real_batch(self) -> torch.Tensor:
        index = torch.randint(len(self.images), (self.settings.batch_size,), device=self.device, generator=self.rng)
        x = to_float(self.images[index])
        return (random_flip(x, self.rng) if self.settings.flip else x).contiguous(memory_format=self.fmt)

    def _latents(self) -> torch.Tensor:
        return torch.randn(self.settings.batch_size, self.settings.latent_dim, device=self.device, generator=self.rng)

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        return diff_augment(x, self.settings.augment_ops, self.rng)

    # -- state ------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        state = {"format": FORMAT, "settings": self.settings.to_dict(), "data_digest": self.data_digest,
                 "steps_done": self.steps_done, "G": self.G.state_dict(), "D": self.D.state_dict(),
                 "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
                 "scaler_g": self.scaler_g.state_dict(), "scaler_d": self.scaler_d.state_dict(), "rng": self.rng.get_state()}
        if self.G_ema is not None:
            state["G_ema"] = self.G_ema.state_dict()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        if self.G_ema is not None:
            self.G_ema.load_state_dict(state["G_ema"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.scaler_g.load_state_dict(state["scaler_g"])
        self.scaler_d.load_state_dict(state["scaler_d"])
        self.rng.set_state(state["rng"].cpu())
        self.steps_done = int(state["steps_done"])

    # -- what a person looks at -------------------------------------------------------------------

    def sample(self, folder: RunFolder, step: int) -> None:
        write_grid(sample_images(self.G_ema or self.G, self.settings.sample_count, self.settings.run.seed),
                   folder.samples / f"step_{step:06d}.png")

    def finish(self, folder: RunFolder) -> dict[str, Path]:
        from facecraft_pipeline.training.checkpoints import Checkpoints

        final = Checkpoints(folder.checkpoints, 1).all()[-1].path
        samples = write_grid(sample_images(self.G_ema or self.G, self.settings.sample_count, self.settings.run.seed),
                             folder.path / "samples.png")
        artifacts = {"checkpoint": final, "samples": samples}
        gif = write_gif(sorted(folder.samples.glob("step_*.png")), folder.path / "training.gif")
        if gif is not None:
            artifacts["gif"] = gif
        return artifacts
