"""The library calls the reference methods use to put linear layers into a quantized format.

Nothing here quantizes by hand: bitsandbytes' own modules (`Linear4bit` with `Params4bit`,
`Linear8bitLt` with `Int8Params`) quantize their weights when moved to their device, torchao's
`quantize_` swaps the weights of the selected modules for its quantized tensor subclasses,
HQQ's `HQQLinear` quantizes the linear layer it is given, and GPTQModel runs GPTQ (Frantar et al.
2022: each layer's weights rounded column by column with second-order error correction from the
calibration activations) on a saved copy of the model and loads its packed result back.

Compute precision follows the device: float32 on a CPU, bfloat16 on CUDA.

Architectures: the layers quantized are the model's `nn.Linear` modules (subclasses included:
Falcon's `FalconLinear`), which covers Llama, GPT-NeoX/Pythia, OPT and fused projections such as
Falcon's `query_key_value`; GPT-2's `Conv1D` projections are first converted to `nn.Linear`
(`linear_projections`), because no quantization library handles `Conv1D`.

Device support (bitsandbytes 0.50, torchao 0.18, checked on a CPU): bitsandbytes' 4-bit (NF4, FP4,
with and without double quantization) and 8-bit (LLM.int8) layers run on the CPU and on CUDA;
torchao's int8 weight-only, int8 dynamic, float8 weight-only and int4 weight-only through
`IntxWeightOnlyConfig` run on the CPU; `Int4WeightOnlyConfig` (tinygemm) does not. GPTQModel 7.7
(the `gptq` extra, a source build: `pip install --no-build-isolation gptqmodel`) quantizes and
runs on the CPU through its `TorchLinear` kernel and on CUDA through its fastest kernel.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Collection
from pathlib import Path

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


def _copy_tokenizer(model: torch.nn.Module, directory: Path) -> None:
    """Save the tokenizer of the checkpoint `model` was loaded from (transformers records its
    directory as `name_or_path`) into `directory`."""
    from transformers import AutoTokenizer

    origin = Path(getattr(model, "name_or_path", "") or "")
    if not origin.is_dir():
        raise Unsupported("GPTQModel needs the model's tokenizer, and the model names no directory")
    AutoTokenizer.from_pretrained(origin, local_files_only=True).save_pretrained(directory)


def gptq(
    model: torch.nn.Module,
    calibration: torch.Tensor,
    modules: Collection[str],
    bits: int,
    group_size: int,
) -> torch.nn.Module:
    """GPTQ through GPTQModel: the model is saved to a scratch directory, quantized there with
    `calibration` (windows of token ids, every token attended), the quantized checkpoint saved
    and loaded back (packed int32 codes, a scale and a packed zero point per `group_size` weights,
    a group index per input column). Linear layers not in `modules` are left out with GPTQModel's
    `dynamic` skip rules; one it leaves unquantized fails the run (`Unsupported`)."""
    # GPTQModel's CPU pool gives its model loader 2 workers but itself (cores + 1) // 2: on a
    # 2-core machine it refuses to start unless told how many CPU workers to use.
    os.environ.setdefault("GPTQMODEL_CPU_WORKERS", str(max(2, (os.cpu_count() or 1) // 2)))
    try:
        from gptqmodel import BACKEND, GPTQModel, QuantizeConfig
    except ImportError as exc:
        raise Unsupported(
            f"GPTQModel is not installed ({exc}): pip install --no-build-isolation gptqmodel"
        ) from exc
    # The checkpoint is reloaded by the architecture's own code: a projection it builds as
    # something else than nn.Linear (GPT-2's Conv1D, converted here) would load transposed.
    with torch.device("meta"):
        native = type(model)(model.config)
    for name in modules:
        if type(native.get_submodule(name)) is not type(model.get_submodule(name)):
            kind = type(native.get_submodule(name)).__name__
            raise Unsupported(f"GPTQModel would reload {name} as a {kind}, not a linear layer")
    dtype = compute_dtype(model)
    device = next(model.parameters()).device
    selected = set(modules)
    skipped = [name for name in quantizable_linears(model) if name not in selected]
    config = QuantizeConfig(
        bits=bits,
        group_size=group_size,
        desc_act=False,
        offload_to_disk=False,  # its per-module disk offload costs minutes on a slow disk
        dynamic={f"-:^{re.escape(name)}$": {} for name in skipped} or None,
    )
    rows = [{"input_ids": row.tolist(), "attention_mask": [1] * len(row)} for row in calibration]
    backend = BACKEND.TORCH if device.type == "cpu" else BACKEND.AUTO
    with tempfile.TemporaryDirectory(prefix="budgetbench-gptq-") as scratch:
        source, target = Path(scratch) / "model", Path(scratch) / "gptq"
        # GPTQModel writes per-run log files under ./logs of the working directory; keep them in
        # the scratch directory instead of the user's.
        from gptqmodel.looper import loop_processor

        loop_processor._PROJECT_LOG_DIR = Path(scratch) / "logs"
        model.to(dtype).save_pretrained(source)
        _copy_tokenizer(model, source)  # GPTQModel loads one beside every checkpoint
        wrapped = GPTQModel.load(str(source), config, device=str(device), dtype=dtype)
        wrapped.quantize(rows, batch_size=min(len(rows), 8))
        wrapped.save(str(target))
        # Its kernels compute in 16 bits only (TorchLinear on a CPU too): bfloat16 everywhere.
        loaded = GPTQModel.load(
            str(target), device=str(device), backend=backend, dtype=torch.bfloat16
        )
    quantized = loaded.model.eval()
    for name in modules:
        layer = quantized.get_submodule(name)
        if "qweight" not in dict(layer.named_buffers()):
            raise Unsupported(f"GPTQModel left {name} unquantized ({type(layer).__name__})")
    return quantized
