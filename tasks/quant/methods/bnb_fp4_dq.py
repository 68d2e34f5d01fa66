"""bitsandbytes FP4 with double quantization: `Linear4bit(quant_type="fp4",
compress_statistics=True)`; the per-block absmax values are themselves quantized to 8 bits in
blocks of 256."""

from tasks.base import MethodRun
from tasks.quant.formats import bitsandbytes_4bit

HYPERPARAMETERS: dict = {}
BITS_PER_WEIGHT = 4.127  # 4 + 8/64 + 32/(64*256), as in the QLoRA paper


def quantize(model, calibration, modules, run: MethodRun):
    return bitsandbytes_4bit(model, modules, "fp4", double_quant=True)
