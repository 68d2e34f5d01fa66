"""torchao int8 dynamic: `quantize_(model, Int8DynamicActivationInt8WeightConfig())`, per-channel
int8 weights and per-token int8 activations quantized on the fly."""

from tasks.base import MethodRun
from tasks.quant.formats import torchao

HYPERPARAMETERS: dict = {}
BITS_PER_WEIGHT = 8.0


def quantize(model, calibration, modules, run: MethodRun):
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig

    return torchao(model, modules, Int8DynamicActivationInt8WeightConfig())
