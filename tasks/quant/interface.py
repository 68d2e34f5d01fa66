"""The method interface of task `quant`: a post-training quantization of a causal LM.

The harness owns the model (a Hugging Face causal LM, loaded in float32), the data (calibration
windows from the training split only; held-out text for every measurement), the reference (the
same model in the profile's reference precision) and every measurement: llama.cpp's KL and
perplexity report, a continuation-choice accuracy and flip rate, a sampling grid, per-layer
sensitivity, bits per weight as the format packs them, speed and memory.

`quantize` is called once on a fresh copy of the model (its wall-clock seconds are recorded as
`quantize_s`) and, for the per-layer sensitivity, once per probed layer with `modules` holding
that one layer's name. Each call gets the same `run`.

A method may: replace the named `torch.nn.Linear` modules with modules of its own format (a
library's, e.g. bitsandbytes, torchao, HQQ, or its own), use `calibration` to choose scales, and
cast what it changes to its compute precision.
A method may not: read held-out text, change modules other than the named ones (norms,
embeddings and the head stay as they are unless named), fine-tune on anything but
`calibration`, or return a model whose logits are not finite (the run then fails).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tasks.base import MethodRun

if TYPE_CHECKING:
    import torch

BITS_PER_WEIGHT: float
"""Required: bits per quantized linear weight as the format stores it (codes plus scales and
zero points, amortised), between 0 and 32; recorded as `bits_per_weight` beside the measured
`measured_bits_per_weight`."""

PER_LAYER_SENSITIVITY: bool = True
"""False for a method with no per-layer format (a whole-model cast): the per-layer sensitivity
is then skipped and noted as not applicable."""


def quantize(
    model: torch.nn.Module, calibration: torch.Tensor, modules: list[str], run: MethodRun
) -> torch.nn.Module:
    """Return the model with the `torch.nn.Linear` modules named in `modules` (qualified names,
    as `model.named_modules()` gives them) in the method's format; changing `model` in place and
    returning it is fine. `model` is a fresh float32 copy on `run.device` in eval mode;
    `calibration` an int64 tensor (windows, context_len) of token ids from the calibration split
    (never the held-out text). Compute in float32 on a CPU, bfloat16 on CUDA
    (`tasks.quant.formats.compute_dtype(model)`)."""
