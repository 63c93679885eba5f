"""dlib's face-recognition ResNet (`dlib_face_recognition_resnet_model_v1.dat`) re-implemented in PyTorch.

Why: dlib's own forward pass runs on one thread without BLAS (`dlib-bin` ships none) at ~70 ms a
face; the same network in PyTorch takes ~6.5 ms on one core, batches, uses every core and runs on
cuda/mps (`benchmarks/embedding_engines.py`). The weights are read straight from dlib's file (no
conversion step, nothing downloaded) and the vectors match dlib's within float tolerance
(`faces/test_dlib_resnet.py` compares them).

The network (dlib's `dnn_face_recognition_ex.cpp`): a 7x7/2 convolution and 3x3/2 max pool, then
residual stages of 32, 64, 128, 256, 256 filters (3, 4, 3, 3, 1 blocks; each stage after the
first opens with a stride-2 block whose shortcut is a 2x2 average pool), a global average pool
and a 128-d linear map. Batch norm is frozen into per-channel affine layers. Where dlib adds two
tensors of different shapes (`add_prev` after a down-sampling block) it pads the smaller with zeros
at the end of each axis; `_add_padded` does the same.

The file is dlib's serialization: layers in forward order, each named by a length-prefixed
version string ("con_4", "affine_", "fc_2"), integers in dlib's compact form (a byte holding the
length and sign, then little-endian bytes) and tensors as four such integers (samples, k, rows,
columns) followed by little-endian float32 data.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# dlib's input_rgb_image: (pixel - channel mean) / 256, channels in R, G, B order.
_MEANS = (122.782, 117.001, 104.298)
# Residual stages: (filters, blocks); every stage but the first starts with a down-sampling block.
_STAGES = ((32, 3), (64, 4), (128, 3), (256, 3), (256, 1))
_LAYER_NAMES = re.compile(rb"\x01\x05con_4|\x01\x07affine_|\x01\x04fc_2")


class DlibFormatError(ValueError):
    """The file is not the dlib face-recognition ResNet this module knows."""


def _read_int(data: bytes, at: int) -> tuple[int, int]:
    """One of dlib's compact integers at `at`: (value, position after it)."""
    header = data[at]
    size, negative = header & 0x0F, header & 0x80
    value = int.from_bytes(data[at + 1 : at + 1 + size], "little")
    return (-value if negative else value), at + 1 + size


def _read_tensor(data: bytes, at: int) -> tuple[np.ndarray, int]:
    version, at = _read_int(data, at)
    if version != 2:
        raise DlibFormatError(f"tensor version {version} at byte {at} (expected 2)")
    shape = []
    for _ in range(4):
        value, at = _read_int(data, at)
        shape.append(value)
    count = int(np.prod(shape))
    values = np.frombuffer(data, dtype="<f4", count=count, offset=at).astype(np.float32)
    return values.reshape(shape), at + 4 * count


def read_dlib_resnet(path: str | Path) -> dict[str, list[np.ndarray]]:
    """The 29 convolutions (weight, bias), 29 affine layers (gamma, beta) and the final matrix, in forward order."""
    data = Path(path).read_bytes()
    try:
        convs, affines, linear = _layers(data)
    except (IndexError, ValueError) as error:  # a truncated tensor, a shape that does not divide
        raise DlibFormatError(f"{path}: not dlib's face-recognition ResNet ({error})") from error
    if len(convs) != 58 or len(affines) != 58 or len(linear) != 1:
        raise DlibFormatError(
            f"{path}: found {len(convs) // 2} convolutions, {len(affines) // 2} affine layers, {len(linear)} fc layers "
            "(dlib_face_recognition_resnet_model_v1 has 29, 29, 1)"
        )
    return {"convs": convs, "affines": affines, "linear": linear}


def _layers(data: bytes) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    convs: list[np.ndarray] = []
    affines: list[np.ndarray] = []
    linear: list[np.ndarray] = []
    for match in _LAYER_NAMES.finditer(data):
        name, at = match.group()[2:], match.end()
        if name == b"con_4":
            params, at = _read_tensor(data, at)
            filters, at = _read_int(data, at)
            rows, at = _read_int(data, at)
            cols, at = _read_int(data, at)
            flat = params.reshape(-1)
            inputs = (flat.size - filters) // (filters * rows * cols)
            weight = flat[: filters * inputs * rows * cols].reshape(filters, inputs, rows, cols)
            convs += [weight, flat[weight.size :]]
        elif name == b"affine_":
            params, _ = _read_tensor(data, at)
            gamma, beta = np.split(params.reshape(-1), 2)
            affines += [gamma, beta]
        else:
            outputs, at = _read_int(data, at)
            inputs, at = _read_int(data, at)
            params, _ = _read_tensor(data, at)
            linear.append(params.reshape(inputs, outputs))
    return convs, affines, linear


def _add_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a + b where shapes differ: both zero-padded at the end of each axis to the larger size (dlib's add_prev)."""
    if a.shape == b.shape:
        return a + b
    shape = [max(x, y) for x, y in zip(a.shape, b.shape)]

    def pad(t: torch.Tensor) -> torch.Tensor:
        # F.pad takes (last axis: before, after), then the axis before it, ...
        amounts = []
        for axis in (3, 2, 1):
            amounts += [0, shape[axis] - t.shape[axis]]
        return F.pad(t, amounts)

    return pad(a) + pad(b)


class _ConvAffine(nn.Module):
    def __init__(self, inputs: int, filters: int, size: int, stride: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(inputs, filters, size, stride, padding=size // 2 if stride == 1 else 0)
        self.gamma = nn.Parameter(torch.ones(filters), requires_grad=False)
        self.beta = nn.Parameter(torch.zeros(filters), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) * self.gamma[:, None, None] + self.beta[:, None, None]


class _Block(nn.Module):
    """relu(shortcut + affine(conv(relu(affine(conv(x)))))); down-sampling blocks stride 2, shortcut avg-pooled."""

    def __init__(self, inputs: int, filters: int, down: bool) -> None:
        super().__init__()
        self.down = down
        self.first = _ConvAffine(inputs, filters, 3, 2 if down else 1)
        self.second = _ConvAffine(filters, filters, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.second(F.relu(self.first(x)))
        shortcut = F.avg_pool2d(x, 2, 2) if self.down else x
        return F.relu(_add_padded(shortcut, out))


class DlibFaceResNet(nn.Module):
    """(N, 3, 150, 150) RGB chips in 0..255 -> (N, 128) descriptors, as dlib's `compute_face_descriptor`."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = _ConvAffine(3, 32, 7, 2)
        blocks, inputs = [], 32
        for stage, (filters, count) in enumerate(_STAGES):
            for index in range(count):
                blocks.append(_Block(inputs, filters, down=stage > 0 and index == 0))
                inputs = filters
        self.blocks = nn.Sequential(*blocks)
        self.linear = nn.Linear(256, 128, bias=False)
        self.register_buffer("means", torch.tensor(_MEANS).view(1, 3, 1, 1), persistent=False)

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        x = (chips - self.means) / 256.0
        x = F.max_pool2d(F.relu(self.stem(x)), 3, 2)
        x = self.blocks(x)
        return self.linear(x.mean(dim=(2, 3)))

    def conv_affine_layers(self) -> list[_ConvAffine]:
        """In forward order, as dlib's file lists them."""
        layers = [self.stem]
        for block in self.blocks:
            layers += [block.first, block.second]
        return layers

    @classmethod
    def from_dlib_file(cls, path: str | Path) -> DlibFaceResNet:
        weights = read_dlib_resnet(path)
        model = cls()
        layers = model.conv_affine_layers()
        with torch.no_grad():
            for index, layer in enumerate(layers):
                weight, bias = weights["convs"][2 * index : 2 * index + 2]
                gamma, beta = weights["affines"][2 * index : 2 * index + 2]
                if tuple(layer.conv.weight.shape) != weight.shape:
                    raise DlibFormatError(f"convolution {index}: file has {weight.shape}, the network {tuple(layer.conv.weight.shape)}")
                layer.conv.weight.copy_(torch.from_numpy(weight))
                layer.conv.bias.copy_(torch.from_numpy(bias))
                layer.gamma.copy_(torch.from_numpy(gamma))
                layer.beta.copy_(torch.from_numpy(beta))
            model.linear.weight.copy_(torch.from_numpy(weights["linear"][0].T.copy()))
        return model.eval().requires_grad_(False)


@lru_cache(maxsize=4)
def load_dlib_resnet(path: str, device: str = "cpu") -> DlibFaceResNet:
    """The network from dlib's file on `device`, loaded once per process and device."""
    return DlibFaceResNet.from_dlib_file(path).to(device)


def chips_to_tensor(chips: list[np.ndarray], device: str | torch.device = "cpu") -> torch.Tensor:
    """(N, 150, 150, 3) uint8 chips -> (N, 3, 150, 150) float32 on `device`."""
    batch = torch.from_numpy(np.ascontiguousarray(np.stack(chips)))
    return batch.to(device).permute(0, 3, 1, 2).float()
