"""bitsandbytes FP4 (4-bit floating point, e2m1): `bitsandbytes.nn.Linear4bit(quant_type="fp4")`,
blocks of 64 weights with one float32 absmax each."""

from tasks.base import MethodRun
from tasks.quant.formats import bitsandbytes_4bit

HYPERPARAMETERS: dict = {}
BITS_PER_WEIGHT = 4.5  # 4-bit codes + a 32-bit absmax per 64 weights


def quantize(model, calibration, modules, run: MethodRun):
    return bitsandbytes_4bit(model, modules, "fp4", double_quant=False)
