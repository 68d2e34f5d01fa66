"""bitsandbytes LLM.int8(): `bitsandbytes.nn.Linear8bitLt(has_fp16_weights=False)`, row-wise int8
weights; input columns with an outlier above the threshold are multiplied in 16 bits."""

from tasks.base import MethodRun
from tasks.quant.formats import bitsandbytes_int8

HYPERPARAMETERS = {"threshold": 6.0}  # LLM.int8()'s and transformers' default
BITS_PER_WEIGHT = 8.0


def quantize(model, calibration, modules, run: MethodRun):
    return bitsandbytes_int8(model, modules, run.hyperparameters["threshold"])
