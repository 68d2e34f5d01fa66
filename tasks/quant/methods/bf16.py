"""bfloat16 weights and compute: the whole model cast with `model.to(torch.bfloat16)` (the
reference on CUDA)."""

import torch

from tasks.base import MethodRun

HYPERPARAMETERS: dict = {}
BITS_PER_WEIGHT = 16.0
PER_LAYER_SENSITIVITY = False  # a whole-model cast, not a per-layer format


def quantize(model, calibration, modules, run: MethodRun):
    return model.to(torch.bfloat16)
