"""The training precision a method asks for (`"fp32"`, `"bf16"` or `"auto"`), resolved for the
device, and the autocast context that applies it; the same rule for every task that trains."""

from __future__ import annotations

import torch


def resolve_precision(precision: str, device: torch.device) -> str:
    """ "auto" is bf16 on a GPU and fp32 on a CPU (where bf16 matmuls are slow)."""
    if precision == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    return precision


def autocast(device: torch.device, precision: str):
    """bf16 autocast where asked for, else a no-op context."""
    enabled = precision == "bf16"
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)
