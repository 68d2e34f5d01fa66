"""The library calls the reference methods use to put linear layers into a quantized format.

Nothing here quantizes by hand: bitsandbytes' own modules (`Linear4bit` with `Params4bit`,
`Linear8bitLt` with `Int8Params`) quantize their weights when moved to their device, torchao's
`quantize_` swaps the weights of the selected modules for its quantized tensor subclasses, and
HQQ's `HQQLinear` quantizes the linear layer it is given.

Compute precision follows the device: float32 on a CPU, bfloat16 on CUDA.

Architectures: the layers quantized are the model's `nn.Linear` modules (subclasses included:
Falcon's `FalconLinear`), which covers Llama, GPT-NeoX/Pythia, OPT and fused projections such as
Falcon's `query_key_value`; GPT-2's `Conv1D` projections are first converted to `nn.Linear`
(`linear_projections`), because no quantization library handles `Conv1D`.

Device support (bitsandbytes 0.50, torchao 0.18, checked on a CPU): bitsandbytes' 4-bit (NF4, FP4,
with and without double quantization) and 8-bit (LLM.int8) layers run on the CPU and on CUDA;
torchao's int8 weight-only, int8 dynamic, float8 weight-only and int4 weight-only through
`IntxWeightOnlyConfig` run on the CPU; `Int4WeightOnlyConfig` (tinygemm) does not.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import torch


class Unsupported(RuntimeError):
    """The method's format does not run on this device (the run fails with this reason)."""


def compute_dtype(model: torch.nn.Module) -> torch.dtype:
    """float32 on a CPU, bfloat16 on CUDA: the precision the reference runs in."""
    device = next(model.parameters()).device
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def linear_projections(model: torch.nn.Module) -> torch.nn.Module:
    """Replace transformers' `Conv1D` projections (GPT-2 family: `x @ W + b` with W stored as
    (in, out)) by the equivalent `nn.Linear` (W transposed), in place, so that every library's
    linear-layer quantizer applies to them. The function computed is the same; only the order of
    the floating-point sums inside the matmul may differ."""
    from transformers.pytorch_utils import Conv1D

    for name, module in list(model.named_modules()):
        if isinstance(module, Conv1D):
            inputs, outputs = module.weight.shape
            linear = torch.nn.Linear(
                inputs, outputs, bias=module.bias is not None, device=module.weight.device,
                dtype=module.weight.dtype,
            )  # fmt: skip
            with torch.no_grad():
                linear.weight.copy_(module.weight.t())
                if module.bias is not None:
                    linear.bias.copy_(module.bias)
            _replace(model, name, linear)
    return model


def quantizable_linears(model: torch.nn.Module) -> list[str]:
    """Names of the model's `nn.Linear` modules, without the output head (kept in full precision
    by every reference method, as transformers' quantization integrations do)."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    return [
        name
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and module is not head
    ]


def _replace(model: torch.nn.Module, name: str, module: torch.nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


def _swap_linears(
    model: torch.nn.Module,
    modules: Collection[str],
    build: Callable[[torch.nn.Linear, torch.dtype], torch.nn.Module],
) -> torch.nn.Module:
    dtype = compute_dtype(model)
    device = next(model.parameters()).device
    model.to(dtype)
    for name in modules:
        linear = model.get_submodule(name)
        if not isinstance(linear, torch.nn.Linear):
            raise TypeError(f"{name} is a {type(linear).__name__}, not a torch.nn.Linear")
        replacement = build(linear, dtype)
        if linear.bias is not None:
            replacement.bias = torch.nn.Parameter(linear.bias.data.clone(), requires_grad=False)
        _replace(model, name, replacement.to(device))  # bitsandbytes quantizes on this move
    return model


def bitsandbytes_4bit(
    model: torch.nn.Module, modules: Collection[str], quant_type: str, double_quant: bool
) -> torch.nn.Module:
    """Swap `modules` for `bitsandbytes.nn.Linear4bit` (blocks of 64; `double_quant` also
    quantizes the block scales: bitsandbytes' `compress_statistics`)."""
    import bitsandbytes as bnb

    def build(linear: torch.nn.Linear, dtype: torch.dtype) -> torch.nn.Module:
        layer = bnb.nn.Linear4bit(
            linear.in_features,
            linear.out_features,
            bias=linear.bias is not None,
            compute_dtype=dtype,
            compress_statistics=double_quant,
            quant_type=quant_type,
            device="meta",
        )
        layer.weight = bnb.nn.Params4bit(
            linear.weight.data.detach().to("cpu"),
            requires_grad=False,
            compress_statistics=double_quant,
            quant_type=quant_type,
        )
        return layer

    return _swap_linears(model, modules, build)


def bitsandbytes_int8(
    model: torch.nn.Module, modules: Collection[str], threshold: float
) -> torch.nn.Module:
    """Swap `modules` for `bitsandbytes.nn.Linear8bitLt` (LLM.int8: row-wise int8 weights;
    input columns with an outlier above `threshold` are multiplied in 16 bits)."""
    import bitsandbytes as bnb

    def build(linear: torch.nn.Linear, dtype: torch.dtype) -> torch.nn.Module:
        layer = bnb.nn.Linear8bitLt(
            linear.in_features,
            linear.out_features,
            bias=linear.bias is not None,
            has_fp16_weights=False,
            threshold=threshold,
            device="meta",
        )
        layer.weight = bnb.nn.Int8Params(
            linear.weight.data.detach().to("cpu"), requires_grad=False, has_fp16_weights=False
        )
        return layer

    return _swap_linears(model, modules, build)


def hqq(
    model: torch.nn.Module, modules: Collection[str], nbits: int, group_size: int
) -> torch.nn.Module:
    """Swap `modules` for `hqq.core.quantize.HQQLinear` (Half-Quadratic Quantization: `nbits`
    codes packed into uint8, a float scale and a float zero point per `group_size` weights, found
    by HQQ's own optimizer without calibration data); it runs on a CPU and on CUDA."""
    from hqq.core.quantize import BaseQuantizeConfig, HQQLinear

    dtype = compute_dtype(model)
    device = next(model.parameters()).device
    model.to(dtype)
    config = BaseQuantizeConfig(nbits=nbits, group_size=group_size)
    for name in modules:
        linear = model.get_submodule(name)
        if not isinstance(linear, torch.nn.Linear):
            raise TypeError(f"{name} is a {type(linear).__name__}, not a torch.nn.Linear")
        layer = HQQLinear(linear, quant_config=config, compute_dtype=dtype, device=str(device))
        _replace(model, name, layer)
    return model


def torchao(model: torch.nn.Module, modules: Collection[str], config) -> torch.nn.Module:
    """Apply a torchao quantization config to `modules` with `torchao.quantization.quantize_`."""
    from torchao.quantization import quantize_

    selected = set(modules)
    model.to(compute_dtype(model))
    quantize_(model, config, filter_fn=lambda module, name: name in selected)
    for name in modules:  # torchao skips a module it has no kernel for, with a warning only
        weight = model.get_submodule(name).weight
        if type(weight) in (torch.Tensor, torch.nn.Parameter):
            device = weight.device.type
            raise Unsupported(
                f"torchao {type(config).__name__} left {name} unquantized on {device}"
                " (no kernel for this device)"
            )
    return model
