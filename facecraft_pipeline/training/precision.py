"""The one map from the `mixed_precision` setting to torch: dtype, autocast, gradient scaler."""

from __future__ import annotations

import contextlib

import torch

DTYPES = {"no": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def dtype(precision: str) -> torch.dtype:
    return DTYPES[precision]


def dtype_name(precision: str) -> str:
    return str(DTYPES[precision]).removeprefix("torch.")


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Autocast to the setting's dtype on `device`; plain fp32 (no autocast) for "no"."""
    if precision == "no":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=DTYPES[precision])


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """Loss scaling only for fp16 (bf16 has fp32's range); disabled scalers are no-ops."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")
