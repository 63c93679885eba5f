"""GANSpace directions (Härkönen et al. 2020): PCA of an early layer's activations, mapped back to z.

1. Draw many latents z, run the generator until an early layer (the generator's `feature_layer`
   if it names one, else the first module whose output is 4-D) and keep its activations y.
2. PCA of y: components u_k ordered by variance; coordinates x_k = u_k . (y - mean).
3. Regress z on the coordinates (least squares, z ~ x W + b): row k of W is the latent direction
   that moves the activations along u_k. Scaled by std(x_k), one slider unit moves the early
   layer by one standard deviation along component k.

Not PCA of z: z is isotropic Gaussian noise, its principal axes mean nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


class _Captured(Exception):
    """Raised from the hook to stop the forward pass once the feature layer has run."""


@dataclass(frozen=True)
class Directions:
    layer: str
    vectors: np.ndarray  # (K, L): one slider unit = one std of component k at the layer
    variance_ratio: np.ndarray  # (K,) share of the layer's total variance, descending
    components: np.ndarray  # (K, D) unit PCA axes in activation space
    mean: np.ndarray  # (D,)
    std: np.ndarray  # (K,) std of the PCA coordinates

    def as_json(self) -> list[dict]:
        return [{"name": f"PC{k + 1}", "variance_ratio": round(float(r), 5), "vector": [round(float(v), 6) for v in vec]}
                for k, (vec, r) in enumerate(zip(self.vectors, self.variance_ratio, strict=True))]


def _forward(generator: nn.Module, z: torch.Tensor, n_controls: int) -> torch.Tensor:
    if n_controls:
        return generator(z, torch.zeros(z.shape[0], n_controls, device=z.device))
    return generator(z)


def feature_layer(generator: nn.Module, n_controls: int = 0) -> tuple[str, nn.Module]:
    """The generator's `feature_layer` (a module or a submodule name), else the first module, in the order
    they run, whose output is a feature map (4-D and larger than 1x1: a reshaped z is not a layer)."""
    explicit = getattr(generator, "feature_layer", None)
    names = {module: name for name, module in generator.named_modules()}
    if isinstance(explicit, str):
        return explicit, generator.get_submodule(explicit)
    if isinstance(explicit, nn.Module):
        return names.get(explicit, "feature_layer"), explicit
    found: list[nn.Module] = []

    def hook(module: nn.Module, _inputs, output) -> None:
        if not found and isinstance(output, torch.Tensor) and output.dim() == 4 and output.shape[-1] * output.shape[-2] > 1:
            found.append(module)
            raise _Captured

    handles = [m.register_forward_hook(hook) for m in generator.modules() if m is not generator]
    try:
        device = next(generator.parameters()).device
        with torch.no_grad():
            _forward(generator, torch.zeros(2, int(generator.latent_dim), device=device), n_controls)
    except _Captured:
        pass
    finally:
        for handle in handles:
            handle.remove()
    if not found:
        raise ValueError("no module of this generator outputs a 4-D feature map; set generator.feature_layer")
    return names[found[0]], found[0]


@torch.no_grad()
def activations(generator: nn.Module, module: nn.Module, z: torch.Tensor, n_controls: int = 0, batch: int = 256) -> torch.Tensor:
    """(N, D) flattened outputs of `module` for latents z (the rest of the network is not run)."""
    out: list[torch.Tensor] = []

    def hook(_module, _inputs, output) -> None:
        out.append(output.detach().float().flatten(1).cpu())
        raise _Captured

    handle = module.register_forward_hook(hook)
    try:
        for start in range(0, z.shape[0], batch):
            try:
                _forward(generator, z[start : start + batch], n_controls)
            except _Captured:
                pass
    finally:
        handle.remove()
    return torch.cat(out)


def find_directions(generator: nn.Module, n_components: int = 8, n_samples: int = 2048, seed: int = 0) -> Directions:
    n_controls = len(getattr(generator, "control_names", ()) or ())
    layer, module = feature_layer(generator, n_controls)
    device = next(generator.parameters()).device
    latent_dim = int(generator.latent_dim)
    z = torch.randn(n_samples, latent_dim, generator=torch.Generator().manual_seed(seed))
    y = activations(generator, module, z.to(device), n_controls).double()
    mean = y.mean(0)
    centred = y - mean
    k = max(1, min(n_components, latent_dim, n_samples - 1, y.shape[1]))
    # Randomized SVD (a few extra axes, several power iterations): the top axes to double precision,
    # O(N D K) instead of a full SVD; seeded so the sliders are the same every start.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        _, s, v = torch.svd_lowrank(centred, q=min(k + 10, *centred.shape), niter=6)
    components = v[:, :k].T
    total = (centred**2).sum()
    signs = torch.sign(components[torch.arange(k), components.abs().argmax(1)])  # fix each axis's sign
    components = components * signs[:, None]
    ratio = (s[:k] ** 2) / total
    x = centred @ components.T  # (N, K)
    design = torch.cat([x, torch.ones(n_samples, 1, dtype=x.dtype)], 1)
    w = torch.linalg.lstsq(design, z.double()).solution[:k]  # (K, L)
    std = x.std(0)
    vectors = w * std[:, None]
    return Directions(layer, vectors.float().numpy(), ratio.float().numpy(), components.float().numpy(),
                      mean.float().numpy(), std.float().numpy())
