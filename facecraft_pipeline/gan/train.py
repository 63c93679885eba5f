"""The GAN trainer (DCGAN-family or WGAN-GP): model, loss and step; the run protocol is `training.train`.

Every random draw of training (batches, flips, augmentation, latents, label flips, replay picks,
interpolation weights) comes from one torch.Generator on the device whose state is checkpointed,
and the networks are initialised from the seed, so an interrupted run that resumes ends with the
same weights as an uninterrupted one (bit for bit on CPU). Nothing in `step` reads a value back to
the host: the ADA probability and the metrics stay on the device.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image

from facecraft_pipeline.digest import hashes_digest, sha256_file
from facecraft_pipeline.gan.augment import adaptive_augment, diff_augment
from facecraft_pipeline.gan.checkpoint import FORMAT
from facecraft_pipeline.gan.conditioning import IdentityCondition
from facecraft_pipeline.gan.grow import stage_at
from facecraft_pipeline.gan.losses import D_LOSSES, G_LOSSES, REAL_LOSSES, dcgan_d_loss, gradient_penalty, r1_penalty
from facecraft_pipeline.gan.models import SeededDropout, build_discriminator, build_generator
from facecraft_pipeline.gan.sample_quality import SampleScorer, best_step
from facecraft_pipeline.gan.sample import interpolation_sheet, sample_images, write_gif, write_grid
from facecraft_pipeline.gan.settings import RECOMMENDED_IMAGES, GanSettings
from facecraft_pipeline.gan.tricks import AdaController, ReplayBuffer, instance_noise_std
from facecraft_pipeline.training import Progress, RunFolder, TrainResult, run_key, train
from facecraft_pipeline.training.images import load_images, to_float
from facecraft_pipeline.training.distributed import World, current_world, local_device, sync_batchnorm
from facecraft_pipeline.training.loop import RunSpec
from facecraft_pipeline.training.warm_start import recipe_key
from facecraft_pipeline.training.precision import autocast, dtype_name, grad_scaler

FLIP_SIGNS = {"yaw": -1.0, "roll": -1.0}  # controls that change sign when a face is mirrored (see faces/attributes.py)
RECIPE_VERSION = 4  # bump when the training maths changes: old runs then get a new key
IDENTITY_VERSION = 2  # the same for identity-conditioned runs only (2: embeddings centred on the library's mean)
OnSample = Callable[[int, Path, dict[str, float]], None]  # (step, grid file, quality metrics)


def metric_names(settings: GanSettings) -> tuple[str, ...]:
    names = ["loss_d", "loss_g", *(("gp", "wasserstein") if settings.kind == "wgan_gp" else ("d_real", "d_fake"))]
    names += ["r1"] if settings.r1_gamma > 0 else []
    names += ["ada_p", "r_t"] if settings.ada.target > 0 else []
    names += ["aux_d", "aux_g"] if settings.control_names else []
    return tuple(names)


def check_images(image_paths: Sequence[Path], settings: GanSettings, distinct: int) -> list[str]:
    """Clear messages for a dataset the settings cannot train on; warnings for one they can (e.g. few images).

    Any number of images >= 1 trains: batches are drawn with replacement (and augmented), so a set
    smaller than a batch repeats images within it."""
    if not image_paths:
        raise ValueError("GAN training needs at least one image, got none")
    smallest = min(min(Image.open(p).size) for p in image_paths)
    if smallest < settings.resolution:
        raise ValueError(f"GanSettings.resolution={settings.resolution} is above the dataset's images (smallest side {smallest} px): "
                         f"lower resolution or curate the dataset at {settings.resolution} px or more")
    if distinct < RECOMMENDED_IMAGES:
        return [f"{distinct} distinct training images, fewer than the {RECOMMENDED_IMAGES} recommended: the GAN will mostly "
                f"reproduce them; add photos for more variety"]
    return []


def train_gan(image_paths: Sequence[Path], root: Path, settings: GanSettings, device: torch.device | str = "cpu",
              progress: Sequence[Progress] = (), controls: torch.Tensor | None = None, quality: SampleScorer | None = None,
              on_sample: OnSample | None = None, world: World | None = None, identity: IdentityCondition | None = None,
              held_out: Sequence[Path] = ()) -> TrainResult:
    """Train (or reuse, resume, extend) into `root/<n>-<kind>-<px>-<key>/`.

    `controls` (N, len(settings.control_names)) in [-1, 1], one row per image, is what G is
    conditioned on (AC-GAN). With `settings.condition == "identity"`, `identity` gives each image's
    identity embedding (every person of the library may be in `image_paths`), the owner's, which G
    draws by default, and each person's centroid. `held_out` are real faces never trained on: at each
    sample step D's loss on them is logged beside its loss on training faces (a growing gap is D
    memorising the training set). `quality` scores generated images at each sample step
    (e.g. KID on face embeddings, faces found, owner similarity); `on_sample` gets each grid and those
    scores. Artifacts: checkpoint (the final state, loadable by `load_generator`), samples (grid), gif
    (the grids of the run, animated), interpolation and interpolation_2d sheets.
    """
    device = local_device(device)
    world = world or current_world(device)  # several processes under torchrun: batch_size is the global batch
    hashes = [sha256_file(Path(p)) for p in image_paths]  # read once: the digest and the distinct count
    warnings = check_images(image_paths, settings, len(set(hashes)))
    if settings.control_names and (controls is None or tuple(controls.shape) != (len(image_paths), len(settings.control_names))):
        raise ValueError(f"GanSettings.controls={settings.controls!r} needs a control vector per image "
                         f"({len(image_paths)} x {len(settings.control_names)}), got {None if controls is None else tuple(controls.shape)}")
    conditioned = settings.condition == "identity"
    if conditioned and (identity is None or len(identity.per_image) != len(image_paths)):
        raise ValueError(f"GanSettings.condition='identity' needs an identity embedding per image ({len(image_paths)}), "
                         f"got {None if identity is None else len(identity.per_image)}")
    identity = identity if conditioned else None
    digest = hashes_digest(hashes)
    order = sorted(range(len(image_paths)), key=lambda i: str(image_paths[i]))  # image order must not matter
    paths = [image_paths[i] for i in order]
    ordered_controls = controls[order] if controls is not None else None
    if identity is not None:
        identity = IdentityCondition(identity.per_image[order].float(), identity.owner.float(), identity.people)
    extra = _tensors_digest(ordered_controls, *((identity.per_image, identity.owner) if identity is not None else ()))
    extra = f"identity-{IDENTITY_VERSION}-{extra}" if identity is not None else extra
    inputs = {"images": len(paths), "distinct_images": len(set(hashes)), "digest": digest}
    if identity is not None:
        inputs["owner_images"] = len(identity.owner)
    spec = RunSpec(
        root=Path(root),
        key=run_key(digest, settings, RECIPE_VERSION, extra),
        description=f"{settings.kind}-{settings.arch}-{settings.resolution}px" + ("-identity" if conditioned else ""),
        run=settings.run,
        info={"settings": settings.to_dict(), "inputs": inputs, "warnings": warnings,
              "device": str(device), "dtype": dtype_name(settings.run.mixed_precision), "recipe": RECIPE_VERSION,
              "versions": {"torch": torch.__version__}},
        recipe_key=recipe_key(settings, RECIPE_VERSION),
        warm_steps=settings.warm_steps,
        images=frozenset(hashes),
    )
    held = load_images(sorted(held_out, key=str), settings.resolution) if held_out else None
    return train(spec, lambda: GanTrainer(load_images(paths, settings.resolution), settings, device, digest, ordered_controls,
                                          quality, on_sample, world, identity, held), progress, device, world)


def _tensors_digest(*tensors: torch.Tensor | None) -> str | None:
    """What else the run key depends on: the control and identity vectors (None when there are none)."""
    parts = [str(t.tolist()) for t in tensors if t is not None]
    return hashlib.sha256("|".join(parts).encode()).hexdigest() if parts else None


class GanTrainer:
    """G, D (or critic), their optimizers, an optional EMA of G, the tricks, and one step of the game."""

    def __init__(self, images: torch.Tensor, settings: GanSettings, device: torch.device | str = "cpu", data_digest: str = "",
                 controls: torch.Tensor | None = None, quality: SampleScorer | None = None, on_sample: OnSample | None = None,
                 world: World = World(), identity: IdentityCondition | None = None, held_out: torch.Tensor | None = None):
        device = torch.device(device)
        self.settings, self.device, self.data_digest, self.world = settings, device, data_digest, world
        if world.size > 1 and (settings.ada.target > 0 or settings.tricks.label_flip > 0):
            raise ValueError("GanSettings.ada.target and tricks.label_flip must be 0 when training on several processes "
                             "(their statistics and draws are per process)")
        self.quality, self.on_sample = quality, on_sample
        s, run = settings, settings.run
        if device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        self.wgan = s.kind == "wgan_gp"
        self.loss_kind = s.loss_kind
        self.metric_names = metric_names(s)
        self.n_d = s.n_critic if self.wgan else 1
        self.images_per_step = s.batch_size * self.n_d
        self.fmt = torch.channels_last if s.channels_last else torch.contiguous_format
        self.images = images.to(device)
        self.held_out = held_out.to(device) if held_out is not None else None
        self.controls = controls.to(device=device, dtype=torch.float32) if controls is not None else None
        self.flip_signs = torch.tensor([FLIP_SIGNS.get(n, 1.0) for n in s.control_names], device=device)
        self.identities = identity.per_image.to(device=device, dtype=torch.float32) if identity is not None else None
        identity_dim = 0 if identity is None else identity.per_image.shape[1]
        people = dict(identity.people) if identity is not None else {}
        bank = len(identity.owner) if identity is not None else 1
        self.G = sync_batchnorm(build_generator(s, identity_dim, bank, len(people)), world, device).to(device, memory_format=self.fmt)
        if people:
            self.G.people.copy_(torch.stack([v.float() for v in people.values()]))
            self.G.people_names = list(people)
        self.D = sync_batchnorm(build_discriminator(s, identity_dim), world, device).to(device, memory_format=self.fmt)
        if identity is not None and self.G.owner is not None:
            self.G.owner.set(identity.owner.to(device=device, dtype=torch.float32))
        if self.identities is not None:
            for net in (self.G, self.D):
                net.identity_norm.center.copy_(self.identities.mean(0))
        if self.controls is not None:
            self.G.control_default.copy_(self.controls.mean(0))  # what controls=None means: the dataset's mean face
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False) if s.ema_decay > 0 else None
        fused = {"fused": True} if device.type == "cuda" else {}
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=s.lr_g, betas=s.betas, **fused)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=s.lr_d, betas=s.betas, **fused)
        self.scaler_g, self.scaler_d = grad_scaler(device, run.mixed_precision), grad_scaler(device, run.mixed_precision)
        self.rng = torch.Generator(device=device).manual_seed(run.seed)
        for module in self.D.modules():
            if isinstance(module, SeededDropout):
                module.generator = self.rng
        self.replay = ReplayBuffer(s.tricks.replay_size, (3, s.resolution, s.resolution), device) if s.tricks.replay_size else None
        self.ada = AdaController(s.ada, s.batch_size, device)
        has_bn = any(isinstance(m, torch.nn.BatchNorm2d) for m in self.D.modules())
        self.concat_d = not has_bn and (not s.minibatch_std or s.batch_size % 4 == 0)  # one D pass over real + fake
        self.G_train = torch.compile(self.G) if s.compile else self.G
        self.D_train = torch.compile(self.D) if s.compile else self.D
        self.steps_done = 0
        self._gp = torch.zeros((), device=device)  # the last gradient penalty (logged between lazy ones)
        self.G.train()
        self.D.train()

    # -- one step ---------------------------------------------------------------------------------

    def step(self) -> torch.Tensor:
        s = self.settings
        self._set_stage()
        for i in range(self.n_d):  # the last critic step's fakes (with their graph) also train G
            loss_d, extra, fake, c_fake, id_fake = self._d_step(keep_graph=i == self.n_d - 1,
                                                                penalise=(self.steps_done * self.n_d + i) % s.gp_every == 0)
        self.D.requires_grad_(False)  # G step: no weight gradients for D
        with self._autocast():
            shown = self.world.shard(self._d_input(fake))  # G ran on the global batch; D sees this rank's slice
            id_shown = self.world.shard(id_fake) if id_fake is not None else None
            out, aux = self.D_train.forward_aux(shown, id_shown)
            c_fake = self.world.shard(c_fake) if c_fake is not None else None
            loss_g = G_LOSSES[self.loss_kind](out)
            aux_g = F.mse_loss(aux.float(), c_fake) if aux is not None else None
            total_g = loss_g + s.control_weight * aux_g if aux_g is not None else loss_g
        self._apply(self.opt_g, self.scaler_g, total_g)
        self._set_stage()  # restores D's trainable layers
        if self.G_ema is not None:  # warm-up: early on the average would mostly remember the random init
            self._update_ema(min(s.ema_decay, (1 + self.steps_done) / (10 + self.steps_done)))
        if self.ada.enabled:
            self.ada.update(self.steps_done)
        self.steps_done += 1
        values = [loss_d.detach(), loss_g.detach(), *extra]
        if self.ada.enabled:
            values += [self.ada.p.clone(), self.ada.r_t()]
        if aux_g is not None:
            values += [self._aux_d.detach(), aux_g.detach()]
        return torch.stack([v.float() for v in values])

    def _d_step(self, keep_graph: bool, penalise: bool = True) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        s = self.settings
        real, c_real, id_real = self._real_batch()
        z, c_fake, id_fake = self._latents()
        with torch.set_grad_enabled(keep_graph), self._autocast():
            fake = self.G_train(z, c_fake, id_fake)
        shown = fake.detach()
        if self.replay is not None:  # (off for identity conditioning: replayed fakes have no identity)
            shown = self.replay.mix(shown, s.tricks.replay_share, self.rng)
        with self._autocast():
            real_in, fake_in = self.world.shard(self._d_input(real)), self.world.shard(self._d_input(shown))
            c_real = self.world.shard(c_real) if c_real is not None else None
            id_real_in = self.world.shard(id_real) if id_real is not None else None
            id_fake_in = self.world.shard(id_fake) if id_fake is not None else None
            if self.concat_d:
                ids = torch.cat([id_real_in, id_fake_in]) if id_real_in is not None and id_fake_in is not None else None
                out, aux = self.D_train.forward_aux(torch.cat([real_in, fake_in]), ids)
                (real_out, fake_out), real_aux = out.chunk(2), (aux[: len(real_in)] if aux is not None else None)
            else:
                (real_out, real_aux), (fake_out, _) = self.D_train.forward_aux(real_in, id_real_in), self.D_train.forward_aux(fake_in, id_fake_in)
            if self.loss_kind == "bce":
                loss = dcgan_d_loss(real_out, fake_out, s.tricks.label_smoothing, s.tricks.label_flip, self.rng)
            else:
                loss = D_LOSSES[self.loss_kind](real_out, fake_out)
            if self.wgan:
                if penalise:  # lazy: every gp_every-th critic step, weighted by gp_every (StyleGAN2's lazy regularisation)
                    eps = self.world.shard(torch.rand(s.batch_size, 1, 1, 1, device=self.device, generator=self.rng))
                    k = s.gp_batch or len(real_in)  # this process's first k: the batch is drawn at random
                    self._gp = gradient_penalty(self._critic(id_real_in[:k] if id_real_in is not None else None), real_in[:k], fake_in[:k],
                                                eps=eps[:k])
                    loss = loss + s.gp_lambda * s.gp_every * self._gp
                extra = [self._gp.detach(), (real_out.mean() - fake_out.mean()).detach()]
            else:
                extra = [torch.sigmoid(real_out.float()).mean().detach(), torch.sigmoid(fake_out.float()).mean().detach()]
            if s.r1_gamma > 0:
                r1 = r1_penalty(self._critic(id_real_in), real_in)
                loss = loss + s.r1_gamma / 2 * r1
                extra.append(r1.detach())
            if real_aux is not None:
                self._aux_d = F.mse_loss(real_aux.float(), c_real)
                loss = loss + s.control_weight * self._aux_d
        if self.ada.enabled:
            self.ada.observe(real_out)
        self._apply(self.opt_d, self.scaler_d, loss)
        return loss, extra, fake, c_fake, id_fake

    def _critic(self, identity: torch.Tensor | None) -> Callable[[torch.Tensor], torch.Tensor]:
        """D as a function of the image alone (for the penalties), its identity fixed to the real batch's."""
        return lambda x: self.D_train(x, identity)

    def _apply(self, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, loss: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        self.world.average_gradients(p for group in optimizer.param_groups for p in group["params"])
        scaler.step(optimizer)
        scaler.update()

    @torch.no_grad()
    def _update_ema(self, decay: float) -> None:
        assert self.G_ema is not None
        ema, live = list(self.G_ema.parameters()), list(self.G.parameters())
        torch._foreach_lerp_(ema, live, 1 - decay)
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers(), strict=True):
            b_ema.copy_(b)

    def _set_stage(self) -> None:
        """Progressive growing: the active side, and which layers train (a function of the step only)."""
        s = self.settings
        if not s.grow:
            self.D.requires_grad_(True)
            return
        stage = stage_at(s, self.steps_done)
        for net in (self.G, self.D, self.G_ema):
            if net is not None:
                net.set_stage(stage.side)
        self.G.requires_grad_(True)
        self.D.requires_grad_(True)
        if stage.frozen:
            self.G.stem.requires_grad_(False)
            for side, block in self.G.blocks.items():
                if int(side) <= stage.previous:
                    block.requires_grad_(False)
            for side, block in self.D.blocks.items():
                if int(side) <= stage.previous:
                    block.requires_grad_(False)
            self.D.head.requires_grad_(False)
            self.D.out.requires_grad_(False)

    def _autocast(self):
        return autocast(self.device, self.settings.run.mixed_precision)

    def _real_batch(self) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """A batch drawn with replacement: any number of images >= 1 trains."""
        index = torch.randint(len(self.images), (self.settings.batch_size,), device=self.device, generator=self.rng)
        x = to_float(self.images[index])
        c = self.controls[index] if self.controls is not None else None
        identity = self.identities[index] if self.identities is not None else None
        if self.settings.flip:
            mirror = torch.rand(x.shape[0], 1, 1, 1, device=x.device, generator=self.rng) < 0.5
            x = torch.where(mirror, x.flip(3), x)
            if c is not None:  # a mirrored face turns the other way: yaw and roll change sign
                c = torch.where(mirror.view(-1, 1), c * self.flip_signs, c)
        return x.contiguous(memory_format=self.fmt), c, identity

    def _latents(self) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """z, and the controls and identities G is asked for: drawn from the dataset's own."""
        n = self.settings.batch_size
        z = torch.randn(n, self.settings.latent_dim, device=self.device, generator=self.rng)
        c = identity = None
        if self.controls is not None:
            c = self.controls[torch.randint(len(self.controls), (n,), device=self.device, generator=self.rng)]
        if self.identities is not None:
            identity = self.identities[torch.randint(len(self.identities), (n,), device=self.device, generator=self.rng)]
        return z, c, identity

    def _d_input(self, x: torch.Tensor) -> torch.Tensor:
        """What D sees: DiffAugment, then ADA's ops at probability p, then instance noise."""
        s = self.settings
        x = diff_augment(x, s.augment_ops, self.rng)
        if self.ada.enabled:
            x = adaptive_augment(x, s.ada_ops, self.ada.p, self.rng)
        std = instance_noise_std(s.tricks, self.steps_done)
        if std > 0:
            x = x + std * torch.randn(x.shape, device=x.device, dtype=x.dtype, generator=self.rng)
        return x

    # -- state ------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        state = {"format": FORMAT, "settings": self.settings.to_dict(), "data_digest": self.data_digest, "people_names": self.G.people_names,
                 "steps_done": self.steps_done, "G": self.G.state_dict(), "D": self.D.state_dict(),
                 "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
                 "scaler_g": self.scaler_g.state_dict(), "scaler_d": self.scaler_d.state_dict(), "rng": self.rng.get_state(),
                 "ada": self.ada.state_dict()}
        if self.G_ema is not None:
            state["G_ema"] = self.G_ema.state_dict()
        if self.replay is not None:
            state["replay"] = self.replay.state_dict()
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
        self.ada.load_state_dict(state["ada"])
        if self.replay is not None:
            self.replay.load_state_dict(state["replay"])
        self.steps_done = int(state["steps_done"])
        self._set_stage()

    def warm_start(self, state: Mapping[str, Any]) -> None:
        """Weights and optimizer moments of another run of these settings; steps, RNG and the owner's embeddings stay this run's."""
        own = {"owner.vectors", "people", "identity_norm.center"}  # this dataset's embeddings (their count may differ)
        for net, name in ((self.G, "G"), (self.G_ema, "G_ema"), (self.D, "D")):
            if net is not None and name in state:
                current = net.state_dict()
                net.load_state_dict({k: v for k, v in state[name].items() if k not in own} | {k: current[k] for k in own if k in current})
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])

    # -- what a person looks at -------------------------------------------------------------------

    @property
    def sampler(self) -> torch.nn.Module:
        return self.G_ema or self.G

    def sample(self, folder: RunFolder, step: int) -> None:
        """The fixed latent batch's grid; then, with a scorer, the quality of fresh samples."""
        grid = write_grid(sample_images(self.sampler, self.settings.sample_count, self.settings.run.seed),
                          folder.samples / f"step_{step:06d}.png")
        metrics: dict[str, float] = self._held_out_losses()
        if self.quality is not None and self.settings.quality_every and step % self.settings.quality_every == 0:
            metrics |= dict(self.quality(sample_images(self.sampler, self.settings.quality_samples, self.settings.run.seed + 1)))
        if metrics:
            with open(folder.path / "quality.jsonl", "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"step": step, **metrics}) + "\n")
        if self.on_sample is not None:
            self.on_sample(step, grid, metrics)

    @torch.no_grad()
    def _held_out_losses(self) -> dict[str, float]:
        """D's real-image loss on the held-out faces and on as many training faces (fixed picks: comparable over steps)."""
        if self.held_out is None:
            return {}
        n = len(self.held_out)
        train = self.images[torch.arange(n, device=self.device) % len(self.images)]
        losses = {}
        self.D.eval()
        try:
            for name, images in (("d_loss_held_out", self.held_out), ("d_loss_train_real", train)):
                identity = self.G.owner.pick(torch.zeros(n, self.settings.latent_dim, device=self.device)) if self.G.owner is not None \
                    else None  # the owner's held-out faces are judged as the owner
                with self._autocast():
                    out = self.D(to_float(images).contiguous(memory_format=self.fmt), identity)
                losses[name] = float(REAL_LOSSES[self.loss_kind](out.float()))
        finally:
            self.D.train()
        return losses

    def facts(self, folder: RunFolder) -> dict[str, Any]:
        """What run.json records beside the loop's facts: the best step by the quality scores."""
        return {"best": best_step(folder.path / "quality.jsonl")} if self.quality is not None else {}

    def finish(self, folder: RunFolder) -> dict[str, Path]:
        from facecraft_pipeline.training.checkpoints import Checkpoints

        final = Checkpoints(folder.checkpoints, 1).all()[-1].path
        seed = self.settings.run.seed
        samples = write_grid(sample_images(self.sampler, self.settings.sample_count, seed), folder.path / "samples.png")
        artifacts = {"checkpoint": final, "samples": samples,
                     "interpolation": interpolation_sheet(self.sampler, folder.path / "interpolation.png", seed, rows=4, columns=8),
                     "interpolation_2d": interpolation_sheet(self.sampler, folder.path / "interpolation_2d.png", seed, rows=6,
                                                             columns=6, two_d=True)}
        gif = write_gif(sorted(folder.samples.glob("step_*.png")), folder.path / "training.gif")
        if gif is not None:
            artifacts["gif"] = gif
        return artifacts
