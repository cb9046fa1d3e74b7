"""Numeric precision of training, sampling and scoring: fp32, bf16 or fp16 autocast.

``precision = "fp32" | "bf16" | "fp16" | "auto"`` (auto: bf16 on CUDA, fp32 elsewhere).
bf16 and fp16 run the matrix products under ``torch.autocast`` on the model's device,
CUDA or CPU (CPU autocast is how the tests exercise the mixed-precision path without a
GPU); weights, optimizer state, LayerNorm, softmax and the loss stay float32. fp16 is the
collapse paper's setting (HF Trainer ``fp16=True``): its narrow exponent range needs loss
scaling, so training with fp16 goes through a ``torch.amp.GradScaler`` (dynamic scale,
steps with inf/NaN gradients skipped), like the reference.

Everything here takes the precision as an argument; nothing asks torch which autocast is
active (``torch.is_autocast_enabled(device)`` / ``torch.get_autocast_dtype`` only exist
from torch 2.4 on).
"""

from __future__ import annotations

import contextlib
from typing import ContextManager, Optional

import torch

from ..errors import CollapseError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise CollapseError(f"precision {precision!r} (choose from {', '.join(PRECISIONS)})")
    return precision


def resolve_precision(precision: str, device: torch.device) -> str:
    """The concrete precision ("fp32", "bf16" or "fp16") on ``device``."""
    check_precision(precision)
    if precision == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    return precision


def autocast_dtype(precision: str) -> Optional[torch.dtype]:
    """The dtype autocast computes matrix products in; None for fp32."""
    return _DTYPES.get(precision)


def autocast(device: torch.device, precision: str) -> ContextManager[None]:
    """torch.autocast for bf16/fp16 on the device's type; a no-op context for fp32."""
    dtype = autocast_dtype(resolve_precision(precision, device))
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def grad_scaler(device: torch.device, precision: str) -> "torch.amp.GradScaler":
    """Dynamic loss scaling, enabled for fp16 only (bf16 and fp32 have float32's range).

    Its defaults are transformers' Trainer's (through torch): initial scale 2**16, halved on
    an inf/NaN step (which is skipped), doubled after 2000 clean steps."""
    enabled = resolve_precision(precision, device) == "fp16"
    return torch.amp.GradScaler(device.type, enabled=enabled)
