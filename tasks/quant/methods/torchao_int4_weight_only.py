"""torchao int4 weight-only: `quantize_(model, IntxWeightOnlyConfig(weight_dtype=torch.int4,
granularity=PerGroup(32)))`, int4 weights in groups of 32 with one scale each. (torchao's
tinygemm `Int4WeightOnlyConfig` does not run on a CPU; this config runs on both.)"""

import torch

from tasks.base import MethodRun
from tasks.quant.formats import torchao

HYPERPARAMETERS = {"group_size": 32}
# 4-bit codes + one scale per 32 weights in the compute precision: bfloat16 on CUDA (4.5 bits);
# a CPU's float32 scales make it 5.0, which the run measures. Zero points: none (symmetric).
BITS_PER_WEIGHT = 4.5


def quantize(model, calibration, modules, run: MethodRun):
    from torchao.quantization import IntxWeightOnlyConfig, PerGroup

    config = IntxWeightOnlyConfig(
        weight_dtype=torch.int4, granularity=PerGroup(run.hyperparameters["group_size"])
    )
    return torchao(model, modules, config)
