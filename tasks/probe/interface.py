"""The method interface of task `probe`: three kernels, timed as the harness times them.

A method replaces PyTorch's own matrix multiply, attention and copy with its own kernels (a
blocked matmul, a fused attention, a custom copy). The harness makes the inputs on the run's
device (seeded by the run's seed), checks each function's output against torch's own result
before timing it (fp32 tolerance 1e-3, bf16 5e-2, fp16 1e-2, relative to the largest entry), then
calls it in a timed loop: `warmup` untimed calls, then repetitions of calibrated length. On a GPU
the clock is CUDA events, so work a function leaves queued on the device is counted.

A method may: use any library and keep what it prepares once (a compiled kernel, scratch
buffers) in `run.state`; the same `run` is passed to every call of one run.
A method may not: return a result of another shape, dtype or device than asked, change its
inputs (but `copy`'s `dst`), or skip work on repeated calls with the same inputs (a result kept
from an earlier call is a wrong measurement, even where the check passes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tasks.base import MethodRun

if TYPE_CHECKING:
    import torch


def matmul(a: torch.Tensor, b: torch.Tensor, run: MethodRun) -> torch.Tensor:
    """Return `a @ b` for two square n x n tensors of the same dtype (float32, bfloat16 or
    float16) on `run.device`, as a new tensor of that dtype and shape. Timed: 2n³ FLOPs a call."""


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, run: MethodRun) -> torch.Tensor:
    """Non-causal scaled-dot-product attention without dropout, softmax(q kᵀ / √dim) v, on
    (batch, heads, seq, dim) tensors (bfloat16 on a GPU, float32 on a CPU); return a tensor of
    q's shape and dtype. Timed: 4·batch·heads·seq²·dim FLOPs a call."""


def copy(dst: torch.Tensor, src: torch.Tensor, run: MethodRun) -> None:
    """Copy `src` into `dst` in place (same shape and dtype, on the device or, on a GPU, between
    pinned host memory and the device); return nothing. The copy must be complete when the
    device's queued work is (the harness synchronizes after the timed calls)."""
