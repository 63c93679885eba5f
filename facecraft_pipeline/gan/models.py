"""Face GAN generators and discriminators/critics that grow one block per doubling of resolution.

Architectures (`GanSettings.arch`):
  dcgan     the 2015 shape: ConvTranspose + BatchNorm G, strided-conv D (kept for reference and speed).
  upsample  nearest Upsample + 3x3 conv in G (no checkerboard artefacts, Odena et al. 2016).
  resnet    residual up/down blocks (SNGAN / BigGAN style) with 1x1 skip convolutions.
Options on top: self-attention (SAGAN) at one feature-map side in G and D, spectral norm, dropout in
D, minibatch standard deviation before D's last block, an auxiliary head on D that predicts the
control vector (AC-GAN), and progressive growing (one to-RGB / from-RGB per stage).

Channel rule (as in the DCGAN paper at 64 px): the block at side `r` has
`base_channels * min(8, resolution // (2 * r))` channels.

The generator contract the explorer relies on: `G.latent_dim`, `G.resolution`, `G.control_names`,
`G.forward(z, controls=None, identity=None)` with controls (N, len(control_names)) in [-1, 1] (None: the
dataset mean), `G.feature_layer` (the first block: its output is what GANSpace PCA looks at).

Identity conditioning (`identity_dim > 0`, the conditional-face project's idea): G and D see a face's
identity embedding. G gets it projected beside z and as a per-channel scale and shift after every
block (FiLM); D is a projection discriminator (Miyato & Koyama 2018: <embed(identity), features> is
added to its score). `identity=None` draws the owner: G keeps a bank of the owner's embeddings and
each latent picks one row (argmax of a fixed projection of z), so a latent always means the same
face and the sample set covers every owner photo's look.

Progressive growing: `set_stage(side)` makes G compute only up to `side` and D only from `side`;
both still speak the full resolution outside (G's output is nearest-upsampled, D average-pools its
input), so nearest-upsample then average-pool is exact and the rest of the trainer never changes.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from facecraft_pipeline.gan.settings import GanSettings

MAX_MULT = 8
MAX_BANK = 256  # owner embeddings a conditioned G keeps for drawing the owner


def _channels(settings: GanSettings, side: int) -> int:
    return settings.base_channels * min(MAX_MULT, settings.resolution // (2 * side))


def _sides(resolution: int) -> list[int]:
    """Feature-map sides between 4 and resolution / 2: [4, 8, ..., resolution // 2]."""
    return [2**i for i in range(2, int(math.log2(resolution)))]


class IdentityInput(nn.Module):
    """An identity embedding as the networks see it: centred on the library's mean, then unit length.

    Face embedders put everyone in a narrow cone (dlib-128: cosine ~0.9 between different people), so
    raw unit vectors barely differ; centring on the training set's mean spreads people apart."""

    def __init__(self, identity_dim: int) -> None:
        super().__init__()
        self.register_buffer("center", torch.zeros(identity_dim))

    def forward(self, identity: torch.Tensor) -> torch.Tensor:
        return F.normalize(identity - self.center.to(identity.dtype), dim=1)


def _sn(module: nn.Module, on: bool) -> nn.Module:
    return nn.utils.parametrizations.spectral_norm(module) if on else module


class SelfAttention(nn.Module):
    """SAGAN self-attention: x + gamma * softmax(Q K^T) V, gamma starting at 0 (the identity)."""

    def __init__(self, channels: int, sn: bool = False) -> None:
        super().__init__()
        inner = max(1, channels // 8)
        self.q = _sn(nn.Conv2d(channels, inner, 1, bias=False), sn)
        self.k = _sn(nn.Conv2d(channels, inner, 1, bias=False), sn)
        self.v = _sn(nn.Conv2d(channels, channels, 1, bias=False), sn)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q, k, v = self.q(x).flatten(2).transpose(1, 2), self.k(x).flatten(2).transpose(1, 2), self.v(x).flatten(2).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v, scale=1.0)  # (N, HW, C)
        return x + self.gamma * out.transpose(1, 2).reshape(n, c, h, w)


class MinibatchStd(nn.Module):
    """Append the mean (over features) of the std over groups of the batch as one channel (Karras et al. 2018).

    Groups are runs of `group` consecutive samples (StyleGAN strides them instead): a data-parallel
    slice of the global batch then holds whole groups, so several processes compute what one does.
    """

    def __init__(self, group: int = 4) -> None:
        super().__init__()
        self.group = group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = math.gcd(self.group, n)
        y = x.float().reshape(n // g, g, c, h, w)
        y = (y.var(dim=1, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # (n // g,)
        y = y.to(x.dtype).repeat_interleave(g).reshape(n, 1, 1, 1).expand(n, 1, h, w)
        return torch.cat([x, y], dim=1)


class SeededDropout(nn.Module):
    """Dropout whose mask comes from `generator` (the trainer's checkpointed one), not the global RNG,
    so a resumed run draws the same masks."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p
        self.generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keep = torch.rand(x.shape, device=x.device, generator=self.generator) >= self.p
        return x * keep.to(x.dtype) / (1 - self.p)


class GBlock(nn.Module):
    """Doubles the side: upsample + conv (+ a second conv and a 1x1 skip for resnet), BatchNorm, ReLU."""

    def __init__(self, c_in: int, c_out: int, arch: str, sn: bool) -> None:
        super().__init__()
        self.arch = arch
        if arch == "dcgan":
            self.body = nn.Sequential(_sn(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), sn), nn.BatchNorm2d(c_out), nn.ReLU(True))
        elif arch == "upsample":
            self.body = nn.Sequential(nn.Upsample(scale_factor=2), _sn(nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False), sn),
                                      nn.BatchNorm2d(c_out), nn.ReLU(True))
        else:
            self.body = nn.Sequential(nn.BatchNorm2d(c_in), nn.ReLU(), nn.Upsample(scale_factor=2),
                                      _sn(nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False), sn), nn.BatchNorm2d(c_out), nn.ReLU(True),
                                      _sn(nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), sn))
            self.skip = nn.Sequential(nn.Upsample(scale_factor=2), _sn(nn.Conv2d(c_in, c_out, 1, bias=False), sn))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.skip(x) if self.arch == "resnet" else self.body(x)


class DBlock(nn.Module):
    """Halves the side: strided conv (dcgan/upsample) or two convs + avg-pool with a 1x1 skip (resnet)."""

    def __init__(self, c_in: int, c_out: int, arch: str, sn: bool, norm: str, dropout: float) -> None:
        super().__init__()
        self.arch = arch
        norm_layer: nn.Module = nn.Identity()
        if norm == "batch":
            norm_layer = nn.BatchNorm2d(c_out)
        elif norm == "layer":  # per-sample (C, H, W) normalisation: what a gradient penalty needs
            norm_layer = nn.GroupNorm(1, c_out)
        if arch == "resnet":
            self.body = nn.Sequential(nn.LeakyReLU(0.2), _sn(nn.Conv2d(c_in, c_out, 3, 1, 1), sn), norm_layer, nn.LeakyReLU(0.2),
                                      _sn(nn.Conv2d(c_out, c_out, 3, 1, 1), sn), nn.AvgPool2d(2))
            self.skip = nn.Sequential(_sn(nn.Conv2d(c_in, c_out, 1), sn), nn.AvgPool2d(2))
        else:
            self.body = nn.Sequential(_sn(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False), sn), norm_layer, nn.LeakyReLU(0.2, True))
        self.drop = SeededDropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x) + self.skip(x) if self.arch == "resnet" else self.body(x)
        return self.drop(out)


class IdentityBank(nn.Module):
    """The owner's identity embeddings; `pick(z)` chooses one row per latent (deterministic in z)."""

    def __init__(self, latent_dim: int, identity_dim: int, rows: int = 1) -> None:
        super().__init__()
        self.register_buffer("vectors", torch.zeros(rows, identity_dim))
        self.register_buffer("chooser", torch.randn(latent_dim, MAX_BANK, generator=torch.Generator().manual_seed(0)))

    def set(self, vectors: torch.Tensor) -> None:
        self.vectors = vectors[:MAX_BANK].to(self.chooser)

    def pick(self, z: torch.Tensor) -> torch.Tensor:
        rows = self.vectors.shape[0]
        index = (z.float() @ self.chooser[:, :rows]).argmax(dim=1)
        return self.vectors[index]


class Generator(nn.Module):
    """(z, controls, identity) -> image (N, 3, R, R) in [-1, 1]."""

    def __init__(self, settings: GanSettings, identity_dim: int = 0, bank_rows: int = 1, people: int = 0) -> None:
        super().__init__()
        self.latent_dim = settings.latent_dim
        self.resolution = settings.resolution
        self.control_names: tuple[str, ...] = settings.control_names
        self.identity_dim = identity_dim
        self.arch = settings.arch
        self.register_buffer("control_default", torch.zeros(len(self.control_names)))  # controls=None: the dataset mean
        sn = settings.spectral_norm_g
        sides = _sides(settings.resolution)
        c = _channels(settings, 4)
        z_in = settings.latent_dim + len(self.control_names) + (settings.latent_dim if identity_dim else 0)
        self.identity_norm = IdentityInput(identity_dim) if identity_dim else None
        self.identity_in = nn.Linear(identity_dim, settings.latent_dim) if identity_dim else None
        self.owner = IdentityBank(settings.latent_dim, identity_dim, bank_rows) if identity_dim else None
        # identity-conditioned: one centroid per person (the explorer's picker); None otherwise
        self.register_buffer("people", torch.zeros(people, identity_dim) if identity_dim else None)
        self.people_names: list[str] = []
        self.film = nn.ModuleDict()
        if self.arch == "dcgan":
            self.stem = nn.Sequential(nn.Unflatten(1, (z_in, 1, 1)), _sn(nn.ConvTranspose2d(z_in, c, 4, 1, 0, bias=False), sn),
                                      nn.BatchNorm2d(c), nn.ReLU(True))
        else:
            self.stem = nn.Sequential(_sn(nn.Linear(z_in, c * 16, bias=False), sn), nn.Unflatten(1, (c, 4, 4)),
                                      nn.BatchNorm2d(c), nn.ReLU(True))
        self.blocks = nn.ModuleDict()
        self.attention = nn.ModuleDict()
        self.to_rgb = nn.ModuleDict()
        channels = {4: c}
        for side in [*sides[1:], settings.resolution]:
            c_next = _channels(settings, side) if side < settings.resolution else max(settings.base_channels // 2, 8)
            if side == settings.resolution and self.arch == "dcgan":
                c_next = 3  # the DCGAN shape: its last transposed conv draws RGB directly
            block = GBlock(c, c_next, self.arch, sn)
            if side == settings.resolution and self.arch == "dcgan":
                block.body = nn.Sequential(_sn(nn.ConvTranspose2d(c, 3, 4, 2, 1, bias=False), sn))
            self.blocks[str(side)] = block
            if identity_dim and c_next != 3:
                self.film[str(side)] = nn.Linear(settings.latent_dim, 2 * c_next)
            if side == settings.attention_res and side < settings.resolution:
                self.attention[str(side)] = SelfAttention(c_next, sn)
            channels[side] = c = c_next
        final = settings.resolution
        tail: list[nn.Module] = [] if self.arch == "dcgan" else (
            [nn.BatchNorm2d(c), nn.ReLU(True)] if self.arch == "resnet" else []) + [nn.Conv2d(c, 3, 3, 1, 1)]
        self.to_rgb[str(final)] = nn.Sequential(*tail, nn.Tanh())
        for side in settings.grow_sides[:-1]:  # progressive growing: one RGB head per earlier stage
            self.to_rgb[str(side)] = nn.Sequential(nn.Conv2d(channels[side], 3, 1), nn.Tanh())
        self.stage = final

    @property
    def feature_layer(self) -> nn.Module:
        """The first upsampling block (8x8 features): where GANSpace PCA looks. A property, so its
        weights are not stored twice in the state dict."""
        return next(iter(self.blocks.values()))

    def set_stage(self, side: int) -> None:
        self.stage = side

    def forward(self, z: torch.Tensor, controls: torch.Tensor | None = None, identity: torch.Tensor | None = None) -> torch.Tensor:
        cond = None
        if self.identity_in is not None:
            assert self.owner is not None
            identity = self.owner.pick(z) if identity is None else identity
            assert self.identity_norm is not None
            cond = self.identity_in(self.identity_norm(identity.to(z.dtype)))
        inputs = [z]
        if self.control_names:
            inputs.append((self.control_default.expand(z.shape[0], -1) if controls is None else controls).to(z.dtype))
        if cond is not None:
            inputs.append(cond)
        x = self.stem(torch.cat(inputs, dim=1) if len(inputs) > 1 else z)
        for side, block in self.blocks.items():
            if int(side) > self.stage:
                break
            x = block(x)
            if cond is not None and side in self.film:
                scale, shift = self.film[side](cond).unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)
                x = x * (1 + scale) + shift
            if side in self.attention:
                x = self.attention[side](x)
        x = self.to_rgb[str(self.stage)](x)
        if self.stage < self.resolution:
            x = F.interpolate(x, scale_factor=self.resolution // self.stage, mode="nearest")
        return x


class Discriminator(nn.Module):
    """image (N, 3, R, R) -> one logit/score per image; `forward_aux` also returns the predicted controls.

    `norm` is "batch" for DCGAN and "layer" for the WGAN-GP critic: a gradient penalty is taken per
    sample, so the critic must not mix samples as BatchNorm does. Spectral norm replaces the norm.
    """

    def __init__(self, settings: GanSettings, norm: str, identity_dim: int = 0) -> None:
        super().__init__()
        self.resolution = settings.resolution
        sn = settings.spectral_norm
        norm = "none" if sn and norm == "batch" else norm
        sides = [settings.resolution, *_sides(settings.resolution)[::-1]]  # R, R/2, ..., 4
        self.from_rgb = nn.ModuleDict()
        self.blocks = nn.ModuleDict()
        self.attention = nn.ModuleDict()
        c_first = _channels(settings, settings.resolution // 2)
        if settings.arch == "resnet":
            self.from_rgb[str(settings.resolution)] = _sn(nn.Conv2d(3, c_first, 3, 1, 1), sn)
            c = c_first
        else:
            c = 3
        for side in sides[:-1]:  # the block that takes side -> side / 2
            c_next = _channels(settings, side // 2)
            first = side == settings.resolution
            self.blocks[str(side)] = DBlock(c, c_next, settings.arch, sn, "none" if first else norm, settings.tricks.d_dropout)
            if side // 2 == settings.attention_res:
                self.attention[str(side)] = SelfAttention(c_next, sn)
            c = c_next
            if side // 2 in settings.grow_sides[:-1]:
                self.from_rgb[str(side // 2)] = nn.Sequential(_sn(nn.Conv2d(3, c, 1), sn), nn.LeakyReLU(0.2))
        self.mbstd = MinibatchStd() if settings.minibatch_std else None
        c_last = c + (1 if self.mbstd else 0)
        self.head = nn.Sequential(nn.LeakyReLU(0.2) if settings.arch == "resnet" else nn.Identity(), _sn(nn.Conv2d(c_last, c, 4, 1, 0), sn),
                                  nn.LeakyReLU(0.2), nn.Flatten()) if settings.arch != "dcgan" else nn.Flatten()
        feat = c if settings.arch != "dcgan" else c_last * 16
        self.out = _sn(nn.Linear(feat, 1, bias=settings.arch != "dcgan"), sn)
        self.aux = nn.Linear(feat, len(settings.control_names)) if settings.control_names else None
        self.identity_norm = IdentityInput(identity_dim) if identity_dim else None
        self.project = _sn(nn.Linear(identity_dim, feat, bias=False), sn) if identity_dim else None
        self.stage = settings.resolution

    def set_stage(self, side: int) -> None:
        self.stage = side

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if self.stage < self.resolution:
            x = F.avg_pool2d(x, self.resolution // self.stage)
        if str(self.stage) in self.from_rgb:
            x = self.from_rgb[str(self.stage)](x)
        for side, block in self.blocks.items():
            if int(side) > self.stage:
                continue
            x = block(x)
            if side in self.attention:
                x = self.attention[side](x)
        if self.mbstd is not None:
            x = self.mbstd(x)
        return self.head(x)

    def _score(self, h: torch.Tensor, identity: torch.Tensor | None) -> torch.Tensor:
        score = self.out(h).flatten()
        if self.project is not None:
            if identity is None:
                raise ValueError("an identity-conditioned discriminator needs the identity of each image")
            assert self.identity_norm is not None
            score = score + (self.project(self.identity_norm(identity.to(h.dtype))) * h).sum(dim=1)
        return score

    def forward_aux(self, x: torch.Tensor, identity: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        h = self.features(x)
        return self._score(h, identity), (self.aux(h) if self.aux is not None else None)

    def forward(self, x: torch.Tensor, identity: torch.Tensor | None = None) -> torch.Tensor:
        return self._score(self.features(x), identity)


def init_weights(module: nn.Module, generator: torch.Generator, std: float = 0.02) -> None:
    """DCGAN init (conv ~ N(0, 0.02), norm scale ~ N(1, 0.02)); orthogonal-ish N(0, 1/fan_in) for
    residual nets. Drawn from `generator` so it is seeded."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            weight = m.parametrizations.weight.original if hasattr(m, "parametrizations") else m.weight
            nn.init.normal_(weight, 0.0, std, generator=generator)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d | nn.GroupNorm):
            nn.init.normal_(m.weight, 1.0, 0.02, generator=generator)
            nn.init.zeros_(m.bias)


def _std(settings: GanSettings) -> float:
    return 0.02 if settings.arch != "resnet" else 0.05


def build_generator(settings: GanSettings, identity_dim: int = 0, bank_rows: int = 1, people: int = 0) -> Generator:
    with torch.random.fork_rng(devices=[]):  # layers that draw at construction (spectral norm's u, v) are seeded too
        torch.manual_seed(settings.run.seed)
        generator = Generator(settings, identity_dim, bank_rows, people)
    init_weights(generator, torch.Generator().manual_seed(settings.run.seed), _std(settings))
    for film in generator.film.values():  # FiLM starts as the identity: scale 1, shift 0
        nn.init.zeros_(film.weight)
        nn.init.zeros_(film.bias)
    return generator


def build_discriminator(settings: GanSettings, identity_dim: int = 0) -> Discriminator:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.run.seed + 1)
        discriminator = Discriminator(settings, norm="batch" if settings.kind == "dcgan" else "layer", identity_dim=identity_dim)
    init_weights(discriminator, torch.Generator().manual_seed(settings.run.seed + 1), _std(settings))
    return discriminator
