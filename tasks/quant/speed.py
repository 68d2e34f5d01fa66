"""Speed and memory of a model at inference, batch size 1.

- Prefill: one forward pass over a `prompt_len`-token prompt (building the KV cache); tokens/s.
- Time to first token: `generate` with one new token (prefill plus one sampling step).
- Decode: after an untimed prefill, `decode_tokens` greedy steps of one token each through the KV
  cache, timed together; decode tokens/s = decode_tokens / their time.
Each is the median of `repeats` timings after one warm-up; on CUDA every timing is bracketed by
`torch.cuda.synchronize()`.

Memory: weight bytes are the bytes of the model's state dict as stored (quantized codes with
their scales and zero points; tied weights once). Peak memory is the weight
bytes plus the largest extra memory the benchmark itself took: CUDA's peak allocated bytes above
the level before it, or on a CPU the process's peak resident memory above its level before it.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch

from tasks.common.measure import PeakResidentMemory


@dataclass(frozen=True)
class SpeedResult:
    prefill_tokens_per_s: float
    decode_tokens_per_s: float
    time_to_first_token_s: float
    ttft_samples: list[float]
    weight_bytes: int
    peak_memory_mib: float


def tensor_bytes(tensor: torch.Tensor) -> int:
    """Bytes a tensor holds; a tensor subclass (torchao's quantized weights) counts the inner
    tensors it is made of (codes, scales, zero points)."""
    if type(tensor) not in (torch.Tensor, torch.nn.Parameter) and hasattr(
        tensor, "__tensor_flatten__"
    ):
        names, _ = tensor.__tensor_flatten__()
        return sum(tensor_bytes(getattr(tensor, name)) for name in names)
    return tensor.numel() * tensor.element_size()


_NARROW_INTEGERS = {
    getattr(torch, f"{kind}{bits}"): bits
    for kind in ("int", "uint")
    for bits in range(1, 8)
    if hasattr(torch, f"{kind}{bits}")
}


def _dtype_bits(dtype: torch.dtype) -> int:
    return _NARROW_INTEGERS.get(dtype, dtype.itemsize * 8)


def format_bits(tensor: torch.Tensor) -> int:
    """Bits a weight takes in its format's packed form, which can be less than it occupies in
    memory: a torchao tensor that keeps its int4 codes one per int8 (`IntxUnpackedToInt8Tensor`)
    counts 4 bits a code; scales count at their dtype; zero points count at the codes' width,
    or nothing when they are all zero (a symmetric format has none; torchao stores zeros)."""
    if type(tensor) in (torch.Tensor, torch.nn.Parameter) or not hasattr(
        tensor, "__tensor_flatten__"
    ):
        return tensor.numel() * tensor.element_size() * 8
    names, _ = tensor.__tensor_flatten__()
    qdata = getattr(tensor, "qdata", None)
    code_dtype = getattr(tensor, "target_dtype", None) or getattr(qdata, "dtype", None)
    code_bits = _dtype_bits(code_dtype) if code_dtype is not None else None
    total = 0
    for name in names:
        inner = getattr(tensor, name)
        if name == "qdata" and code_bits is not None:
            total += inner.numel() * code_bits
        elif name == "zero_point" and code_bits is not None:
            total += inner.numel() * code_bits if bool(inner.any()) else 0
        else:
            total += format_bits(inner)
    return total


def bits_per_weight(base: torch.nn.Module, quantized: torch.nn.Module, names: list[str]) -> float:
    """Bits per weight of the quantized linear layers `names` as their format packs them (codes,
    scales, zero points and, for bitsandbytes, the stored quantization state; biases excluded)."""
    weights = sum(base.get_submodule(name).weight.numel() for name in names)
    stored = 0
    for name in names:
        module = quantized.get_submodule(name)
        stored += sum(
            format_bits(value)
            for key, value in module.state_dict(keep_vars=True).items()
            if isinstance(value, torch.Tensor) and key != "bias"
        )
    return stored / weights


def state_bytes(module: torch.nn.Module) -> int:
    """Bytes of a module's state dict: weights as stored, with bitsandbytes' quantization state;
    a tensor shared under two names (tied embeddings) counts once."""
    seen: set[int] = set()
    total = 0
    for value in module.state_dict(keep_vars=True).values():
        if not isinstance(value, torch.Tensor):
            continue
        if type(value) in (torch.Tensor, torch.nn.Parameter):
            if value.data_ptr() in seen:
                continue
            seen.add(value.data_ptr())
        total += tensor_bytes(value)
    return total


def _timed(device: torch.device, work) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    work()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - started


@torch.no_grad()
def measure_speed(
    model: torch.nn.Module, prompt: torch.Tensor, decode_tokens: int, repeats: int
) -> SpeedResult:
    device = prompt.device
    options = {
        "attention_mask": torch.ones_like(prompt),
        "do_sample": False,
        "temperature": None,
        "top_k": None,
        "top_p": None,
        "pad_token_id": model.config.pad_token_id or 0,
    }

    def prefill() -> None:
        model(input_ids=prompt, use_cache=True)

    def first_token() -> None:
        model.generate(prompt, max_new_tokens=1, min_new_tokens=1, **options)

    def decode() -> float:
        output = model(input_ids=prompt, use_cache=True)
        cache, token = output.past_key_values, output.logits[:, -1:].argmax(-1)

        def steps() -> None:
            nonlocal cache, token
            for _ in range(decode_tokens):
                output = model(input_ids=token, past_key_values=cache, use_cache=True)
                cache, token = output.past_key_values, output.logits[:, -1:].argmax(-1)

        return _timed(device, steps)

    weight_bytes = state_bytes(model)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
    with PeakResidentMemory() as resident:
        start_rss = resident.peak_bytes
        samples = {}
        for label, work in (("prefill", prefill), ("ttft", first_token)):
            work()  # warm-up
            samples[label] = [_timed(device, work) for _ in range(repeats)]
        decode()  # warm-up
        samples["decode"] = [decode() for _ in range(repeats)]
    if device.type == "cuda":
        extra = torch.cuda.max_memory_allocated(device) - before
    else:
        extra = resident.peak_bytes - start_rss
    prefill_s = statistics.median(samples["prefill"])
    ttft_s = statistics.median(samples["ttft"])
    decode_s = statistics.median(samples["decode"])
    return SpeedResult(
        prefill_tokens_per_s=prompt.numel() / prefill_s,
        decode_tokens_per_s=decode_tokens / decode_s,
        time_to_first_token_s=ttft_s,
        ttft_samples=samples["ttft"],
        weight_bytes=weight_bytes,
        peak_memory_mib=(weight_bytes + max(extra, 0)) / 2**20,
    )
