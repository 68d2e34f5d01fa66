"""torchao float8 weight-only: `quantize_(model, Float8WeightOnlyConfig())`, e4m3 weights with a
per-channel scale. On CUDA torchao's float8 needs compute capability 8.9 or newer."""

import torch

from tasks.base import MethodRun
from tasks.quant.formats import Unsupported, torchao

HYPERPARAMETERS: dict = {}
BITS_PER_WEIGHT = 8.0


def quantize(model, calibration, modules, run: MethodRun):
    from torchao.quantization import Float8WeightOnlyConfig

    device = next(model.parameters()).device
    if device.type == "cuda" and torch.cuda.get_device_capability(device) < (8, 9):
        raise Unsupported(f"float8 needs compute capability 8.9+, {device} has less")
    return torchao(model, modules, Float8WeightOnlyConfig())
