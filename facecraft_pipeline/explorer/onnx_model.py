"""The generator as ONNX: exported once, run by onnxruntime (the served page on CPU) or onnxruntime-web (the static page).

Why the served page renders through onnxruntime on CPU: for the `full` profile's generator
(Upsample+conv, attention, 5 M parameters) a forward pass takes ~25-28 ms in eager PyTorch on two
cores and ~18 ms in onnxruntime (`benchmarks/explorer_latency.py`); the outputs agree within ~1e-7,
so the painted pixels are the same within one level. On cuda/mps the explorer keeps PyTorch.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import torch
from torch import nn

from facecraft_pipeline.explorer.model import LoadedModel


class _WithControls(nn.Module):
    def __init__(self, generator: nn.Module):
        super().__init__()
        self.generator = generator

    def forward(self, z: torch.Tensor, controls: torch.Tensor) -> torch.Tensor:
        return self.generator(z, controls)


def export_onnx(model: LoadedModel) -> bytes:
    """The generator as ONNX bytes: inputs z (N, L) [and controls (N, C)], output image (N, 3, R, R).

    TorchScript exporter (`dynamo=False`: no onnxscript needed), opset 17, batch axis dynamic.
    """
    generator = model.generator.cpu().eval()
    z = torch.zeros(1, model.latent_dim)
    names, args, module = ["z"], (z,), generator
    if model.control_names:
        names, args, module = ["z", "controls"], (z, torch.zeros(1, len(model.control_names))), _WithControls(generator).eval()
    axes = {name: {0: "n"} for name in [*names, "image"]}
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy-exporter deprecation notice
        torch.onnx.export(module, args, buffer, dynamo=False, input_names=names, output_names=["image"],
                          dynamic_axes=axes, opset_version=17)
    generator.eval()  # the exporter restores the top module's mode onto every child: keep the explorer's G in eval
    return buffer.getvalue()


class OnnxRenderer:
    """`LoadedModel.render` through onnxruntime's CPU provider: the same (R, R, 3) uint8 image."""

    def __init__(self, model: LoadedModel, onnx_bytes: bytes | None = None) -> None:
        import onnxruntime as ort

        self.model = model
        self.session = ort.InferenceSession(onnx_bytes or export_onnx(model), providers=["CPUExecutionProvider"])

    def render(self, latent, controls=None) -> np.ndarray:  # noqa: ANN001 - JSON values, checked by the model
        z, c = self.model.check_inputs(latent, controls)
        feeds = {"z": z[None]}
        if self.model.control_names:
            feeds["controls"] = c[None]
        image = self.session.run(None, feeds)[0][0]
        return np.round((np.clip(image, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8).transpose(1, 2, 0)
