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


class _ExplorerInputs(nn.Module):
    """The model's forward with the explorer's inputs as positional tensors: z [, controls] [, person, t]."""

    def __init__(self, model: LoadedModel):
        super().__init__()
        self.model = model
        self.generator = model.generator  # a submodule, so the exporter sees its weights

    def forward(self, z: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
        controls = rest[0] if self.model.control_names else None
        person, t = rest[-2:] if self.model.identity_dim else (None, None)
        return self.model.forward(z, controls, person, t)


def export_onnx(model: LoadedModel) -> bytes:
    """The generator as ONNX bytes: inputs z (N, L) [, controls (N, C)] [, person (N, D) and t (N, 1)],
    output image (N, 3, R, R). An identity-conditioned G takes the picked person's centroid and the
    identity slider and morphs its owner inside the graph (`model.morph_identity`): the page feeds
    zeros and t = 0 for the owner's own draw.

    TorchScript exporter (`dynamo=False`: no onnxscript needed), opset 17, batch axis dynamic.
    """
    generator = model.generator.cpu().eval()
    names, args = ["z"], [torch.zeros(1, model.latent_dim)]
    if model.control_names:
        names, args = [*names, "controls"], [*args, torch.zeros(1, len(model.control_names))]
    if model.identity_dim:
        names, args = [*names, "person", "t"], [*args, torch.zeros(1, model.identity_dim), torch.zeros(1, 1)]
    module = _ExplorerInputs(model).eval() if len(names) > 1 else generator
    axes = {name: {0: "n"} for name in [*names, "image"]}
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy-exporter deprecation notice
        torch.onnx.export(module, tuple(args), buffer, dynamo=False, input_names=names, output_names=["image"],
                          dynamic_axes=axes, opset_version=17)
    generator.eval()  # the exporter restores the top module's mode onto every child: keep the explorer's G in eval
    return buffer.getvalue()


class OnnxRenderer:
    """`LoadedModel.render` through onnxruntime's CPU provider: the same (R, R, 3) uint8 image."""

    def __init__(self, model: LoadedModel, onnx_bytes: bytes | None = None) -> None:
        import onnxruntime as ort

        self.model = model
        self.session = ort.InferenceSession(onnx_bytes or export_onnx(model), providers=["CPUExecutionProvider"])

    def render(self, latent, controls=None, person=None, t=0.0) -> np.ndarray:  # noqa: ANN001 - JSON values, checked by the model
        z, c = self.model.check_inputs(latent, controls)
        person, t = self.model.check_identity(person, t)
        feeds = {"z": z[None]}
        if self.model.control_names:
            feeds["controls"] = c[None]
        if self.model.identity_dim:
            feeds["person"], feeds["t"] = self.model.person_vector(person)[None], np.array([[t]], np.float32)
        image = self.session.run(None, feeds)[0][0]
        return np.round((np.clip(image, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8).transpose(1, 2, 0)
