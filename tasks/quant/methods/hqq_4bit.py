"""HQQ 4-bit (Half-Quadratic Quantization, Badri & Shaji 2023): `hqq.core.quantize.HQQLinear`
with `BaseQuantizeConfig(nbits=4, group_size=64)`, codes packed two to a byte, a scale and a zero
point per 64 weights, optimized without calibration data. Runs on a CPU and on CUDA."""

from tasks.base import MethodRun
from tasks.quant.formats import hqq

HYPERPARAMETERS = {"nbits": 4, "group_size": 64}
# 4-bit codes + a 16-bit scale and a 16-bit zero point per 64 weights (bfloat16 on CUDA: 4.5);
# a CPU's float32 scales and zero points make it 5.0, which the run measures.
BITS_PER_WEIGHT = 4.5


def quantize(model, calibration, modules, run: MethodRun):
    return hqq(model, modules, run.hyperparameters["nbits"], run.hyperparameters["group_size"])
