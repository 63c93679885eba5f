"""A tiny stand-in "face model" in ONNX, written byte by byte (the `onnx` package is not installed).

It is NOT a face model: Flatten then MatMul with a seeded random matrix, so its output is a known
linear function of the exact input tensor. That lets tests check the embedder's plumbing
(input size, channel order, scaling, NCHW layout, batching, normalisation) to float precision.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

FLOAT = 1  # TensorProto.FLOAT
ATTRIBUTE_INT = 2  # AttributeProto.INT


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _int(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


def _bytes(field: int, payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def _tensor_type(dims: list[int | str]) -> bytes:
    shape = b"".join(_bytes(1, _int(1, d) if isinstance(d, int) else _bytes(2, d)) for d in dims)
    return _bytes(1, _int(1, FLOAT) + _bytes(2, shape))  # TypeProto.tensor_type


def _value_info(name: str, dims: list[int | str]) -> bytes:
    return _bytes(1, name) + _bytes(2, _tensor_type(dims))


def linear_model_weights(size: int = 112, dim: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((3 * size * size, dim)).astype(np.float32)


def write_linear_model(
    path: Path, size: int = 112, dim: int = 8, seed: int = 0, batch: int | None = None
) -> np.ndarray:
    """Write input (N,3,size,size) -> Flatten -> MatMul(W) -> (N,dim) to `path`; returns W.

    `batch` fixes the batch dimension (e.g. 1, as some exported models do); None leaves it free.
    """
    weights = linear_model_weights(size, dim, seed)
    batch_dim: int | str = batch if batch is not None else "N"
    flatten = _bytes(1, "input") + _bytes(2, "flat") + _bytes(3, "flatten") + _bytes(4, "Flatten")
    flatten += _bytes(5, _bytes(1, "axis") + _int(3, 1) + _int(20, ATTRIBUTE_INT))
    matmul = _bytes(1, "flat") + _bytes(1, "W") + _bytes(2, "embedding") + _bytes(3, "project") + _bytes(4, "MatMul")
    initializer = _int(1, weights.shape[0]) + _int(1, weights.shape[1]) + _int(2, FLOAT) + _bytes(8, "W")
    initializer += _bytes(9, weights.astype("<f4").tobytes())
    graph = _bytes(1, flatten) + _bytes(1, matmul) + _bytes(2, "tiny-linear") + _bytes(5, initializer)
    graph += _bytes(11, _value_info("input", [batch_dim, 3, size, size]))
    graph += _bytes(12, _value_info("embedding", [batch_dim, dim]))
    model = _int(1, 8) + _bytes(2, "facecraft-tests") + _bytes(7, graph) + _bytes(8, _bytes(1, "") + _int(2, 13))
    path.write_bytes(model)
    return weights


def expected_embedding(crop: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """What the embedder must return for one crop already at the model's input size."""
    tensor = ((crop.astype(np.float32) - 127.5) / 127.5).transpose(2, 0, 1).reshape(-1)
    vector = tensor @ weights
    return vector / np.linalg.norm(vector)
