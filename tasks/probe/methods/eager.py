"""PyTorch eager kernels: torch.matmul, F.scaled_dot_product_attention and Tensor.copy_.

The reference for the probe: the numbers then track the hardware, driver and torch build.
"""

import torch
import torch.nn.functional as F

from tasks.base import MethodRun

HYPERPARAMETERS: dict = {}


def matmul(a: torch.Tensor, b: torch.Tensor, run: MethodRun) -> torch.Tensor:
    return torch.matmul(a, b)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, run: MethodRun) -> torch.Tensor:
    return F.scaled_dot_product_attention(q, k, v)


def copy(dst: torch.Tensor, src: torch.Tensor, run: MethodRun) -> None:
    dst.copy_(src, non_blocking=False)
