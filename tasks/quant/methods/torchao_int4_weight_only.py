"""torchao int4 weight-only: `quantize_(model, IntxWeightOnlyConfig(weight_dtype=torch.int4,
granularity=PerGroup(32)))`, int4 weights in groups of 32 with one scale each. (torchao's
tinygemm `Int4WeightOnlyConfig` does not run on a CPU; this config runs on both.)"""

import torch

from tasks.quant.formats import torchao

HYPERPARAMETERS = {"group_size": 32}
BITS_PER_WEIGHT = 4.5  # 4-bit codes + a 16-bit scale per 32 weights, nominally


def quantize(model, calibration, modules):
    from torchao.quantization import IntxWeightOnlyConfig, PerGroup

    config = IntxWeightOnlyConfig(
        weight_dtype=torch.int4, granularity=PerGroup(HYPERPARAMETERS["group_size"])
    )
    return torchao(model, modules, config)
