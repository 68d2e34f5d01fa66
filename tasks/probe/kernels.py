"""The probe's measurements. Imported only when a probe runs (it imports torch)."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from types import ModuleType

import torch
import torch.nn.functional as F

from tasks.base import Method, MethodRun, RunContext
from tasks.common.measure import time_per_call

MIB = 2**20


def _check_close(name: str, got: torch.Tensor, expected: torch.Tensor, tol: float) -> None:
    if got.shape != expected.shape:
        raise ValueError(
            f"method's {name} returned shape {tuple(got.shape)}, expected {tuple(expected.shape)}"
        )
    error = (got.float() - expected.float()).abs().max().item()
    scale = expected.float().abs().max().item() or 1.0
    if error > tol * scale:
        raise ValueError(f"method's {name} result differs from torch's (max error {error:.3g})")


def dtype_supported(dtype: torch.dtype, device: torch.device) -> bool:
    try:
        a = torch.ones(4, 4, dtype=dtype, device=device)
        (a @ a).sum().item()
        return True
    except (RuntimeError, TypeError):
        return False


TOLERANCE = {torch.float32: 1e-3, torch.bfloat16: 5e-2, torch.float16: 1e-2}


def run_probe(ctx: RunContext, loaded: Method, config) -> None:
    device = torch.device(ctx.device)
    method, run = loaded.module, loaded.new_run(ctx.seed, ctx.device)
    cfg = config
    timing = {
        "device": device,
        "warmup": cfg.warmup,
        "repeats": cfg.repeats,
        "min_repeat_s": cfg.min_repeat_s,
    }
    steps: list[tuple[str, Callable[[], None]]] = []

    for dtype_name in cfg.matmul_dtypes:
        steps.append(
            (
                f"matmul {dtype_name}",
                lambda d=dtype_name: _matmul(ctx, method, run, cfg, getattr(torch, d), timing),
            )
        )
    steps.append(("memory bandwidth", lambda: _memory_bandwidth(ctx, method, run, cfg, timing)))
    steps.append(("attention", lambda: _attention(ctx, method, run, cfg, timing)))
    if device.type == "cuda":
        steps.append(("host<->device", lambda: _transfers(ctx, method, run, cfg, timing)))

    for _description, step in ctx.track(steps, "probe", total=len(steps)):
        with ctx.clock.timed():
            step()


def _matmul(
    ctx: RunContext, method: ModuleType, run: MethodRun, cfg, dtype: torch.dtype, timing: dict
) -> None:
    device = timing["device"]
    if not dtype_supported(dtype, device):
        return
    n = cfg.matmul_size
    generator = torch.Generator(device="cpu").manual_seed(ctx.seed)
    a = torch.randn(n, n, generator=generator).to(device=device, dtype=dtype)
    b = torch.randn(n, n, generator=generator).to(device=device, dtype=dtype)
    _check_close("matmul", method.matmul(a, b, run), a @ b, TOLERANCE[dtype])
    seconds = time_per_call(lambda: method.matmul(a, b, run), **timing)
    flops = 2.0 * n**3
    samples = [flops / s / 1e12 for s in seconds]
    short = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]
    ctx.record(f"matmul_{short}_tflops", statistics.median(samples), samples=samples)


def _memory_bandwidth(
    ctx: RunContext, method: ModuleType, run: MethodRun, cfg, timing: dict
) -> None:
    device = timing["device"]
    count = cfg.copy_mib * MIB // 4
    src = torch.arange(count, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    method.copy(dst, src, run)
    if not torch.equal(dst, src):
        raise ValueError("method's copy did not copy src into dst")
    seconds = time_per_call(lambda: method.copy(dst, src, run), **timing)
    moved = 2.0 * src.numel() * src.element_size()  # each byte is read once and written once
    samples = [moved / s / 1e9 for s in seconds]
    ctx.record("memory_bandwidth_gbps", statistics.median(samples), samples=samples)


def _attention(ctx: RunContext, method: ModuleType, run: MethodRun, cfg, timing: dict) -> None:
    device = timing["device"]
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    shape = (
        cfg.attention_batch,
        cfg.attention_heads,
        cfg.attention_seq_len,
        cfg.attention_head_dim,
    )
    generator = torch.Generator(device="cpu").manual_seed(ctx.seed)
    q, k, v = (
        torch.randn(shape, generator=generator).to(device=device, dtype=dtype) for _ in range(3)
    )
    _check_close(
        "attention",
        method.attention(q, k, v, run),
        F.scaled_dot_product_attention(q, k, v),
        TOLERANCE[dtype],
    )
    seconds = time_per_call(lambda: method.attention(q, k, v, run), **timing)
    batch, heads, seq, dim = shape
    flops = 4.0 * batch * heads * seq * seq * dim  # QK^T and PV, two flops per multiply-add
    samples = [flops / s / 1e12 for s in seconds]
    ctx.record("attention_tflops", statistics.median(samples), samples=samples)


def _transfers(ctx: RunContext, method: ModuleType, run: MethodRun, cfg, timing: dict) -> None:
    device = timing["device"]
    count = cfg.transfer_mib * MIB // 4
    host = torch.arange(count, dtype=torch.float32).pin_memory()
    gpu = torch.empty(count, dtype=torch.float32, device=device)
    nbytes = host.numel() * host.element_size()
    for name, dst, src in (("h2d_gbps", gpu, host), ("d2h_gbps", host, gpu)):
        seconds = time_per_call(lambda d=dst, s=src: method.copy(d, s, run), **timing)
        samples = [nbytes / s / 1e9 for s in seconds]
        ctx.record(name, statistics.median(samples), samples=samples)
