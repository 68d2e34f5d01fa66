"""GPTQ 4-bit (Frantar et al. 2022, "GPTQ: Accurate Post-Training Quantization for Generative
Pre-trained Transformers") through GPTQModel: weights rounded column by column with second-order
error correction from the calibration windows' activations, groups of 128, no act-order, the
usual configuration of published GPTQ checkpoints. Runs on a CPU (GPTQModel's TorchLinear) and on
CUDA; its kernels compute in bfloat16 on both, so on a CPU its KL also holds bfloat16
activations. Needs the `gptq` extra. The per-layer sweep is skipped: each single layer would cost
a whole GPTQModel pass (save, calibrate, pack, load)."""

from tasks.base import MethodRun
from tasks.quant.formats import gptq

HYPERPARAMETERS = {"bits": 4, "group_size": 128}
# 4-bit codes + a 16-bit scale and a 4-bit zero point per 128 weights; GPTQModel also stores a
# 32-bit group index per input column (32 / out_features bits a weight), which the run measures.
BITS_PER_WEIGHT = 4 + (16 + 4) / 128
PER_LAYER_SENSITIVITY = False


def quantize(model, calibration, modules, run: MethodRun):
    hp = run.hyperparameters
    return gptq(model, calibration, modules, hp["bits"], hp["group_size"])
