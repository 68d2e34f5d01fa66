"""torchao int8 weight-only: `quantize_(model, Int8WeightOnlyConfig())`, per-channel symmetric
int8 weights, activations in the compute precision."""

from tasks.base import MethodRun
from tasks.quant.formats import torchao

HYPERPARAMETERS: dict = {}
BITS_PER_WEIGHT = 8.0


def quantize(model, calibration, modules, run: MethodRun):
    from torchao.quantization import Int8WeightOnlyConfig

    return torchao(model, modules, Int8WeightOnlyConfig())
