"""Task `probe`: hardware micro-benchmarks for regression tracking.

Measures matrix-multiply throughput per dtype, device memory bandwidth, scaled-dot-product
attention throughput and, on a GPU, host<->device copy bandwidth. Each number is the median over
`repeats` timed repetitions (raw repetitions stored beside it); every repetition runs the operation
enough times to last at least `min_repeat_s`, after `warmup` untimed calls. GPU timings use CUDA
events. Before timing, each method function's output is checked against torch's own result, so
a method cannot buy speed with wrong answers.

Formulas: matmul FLOPs are 2n³ for n x n matrices; attention FLOPs are 4·B·H·S²·D (QKᵀ and PV, no
causal mask) and run in bf16 on a GPU, fp32 on a CPU; memory bandwidth counts each copied byte
twice (read and write); host<->device copies use pinned host memory. The whole probe counts as
timed; there is no budget.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tasks.base import (
    Consistency,
    GateResult,
    Method,
    Metric,
    RunContext,
    Task,
    bounds,
)

DTYPES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}


@dataclass(frozen=True)
class ProbeConfig:
    """One profile's settings (see suite/<version>/probe.toml)."""

    matmul_size: int = field(metadata=bounds(1, 65536))
    matmul_dtypes: list[str]
    copy_mib: int = field(metadata=bounds(1, 2**20))
    attention_batch: int = field(metadata=bounds(1, 65536))
    attention_heads: int = field(metadata=bounds(1, 1024))
    attention_seq_len: int = field(metadata=bounds(1, 2**20))
    attention_head_dim: int = field(metadata=bounds(1, 1024))
    transfer_mib: int = field(metadata=bounds(1, 2**20))
    warmup: int = field(metadata=bounds(0, 10**6))
    repeats: int = field(metadata=bounds(1, 10**6))
    min_repeat_s: float = field(metadata=bounds(1e-6, 3600))

    def __post_init__(self) -> None:
        unknown = [d for d in self.matmul_dtypes if d not in DTYPES]
        if unknown:
            raise TypeError(f"matmul_dtypes: unknown dtype {unknown[0]!r} (known: {list(DTYPES)})")


REQUIRED_METRICS = ("matmul_fp32_tflops", "memory_bandwidth_gbps", "attention_tflops")


class ProbeTask(Task):
    name = "probe"
    description = "Hardware micro-benchmarks: matmul, memory bandwidth, attention, transfers."
    config_type = ProbeConfig
    reference_methods = ("eager",)
    consistency = Consistency(values_are_sample_medians=True)
    metrics = (
        *(
            Metric(f"matmul_{short}_tflops", "TFLOP/s", True, f"{dtype} n x n matrix multiply")
            for dtype, short in DTYPES.items()
        ),
        Metric(
            "memory_bandwidth_gbps", "GB/s", True, "device copy, bytes read + written per second"
        ),
        Metric("attention_tflops", "TFLOP/s", True, "scaled-dot-product attention forward"),
        Metric("h2d_gbps", "GB/s", True, "pinned host to device copy (GPU only)"),
        Metric("d2h_gbps", "GB/s", True, "device to pinned host copy (GPU only)"),
    )

    def quality_gate(self, scalars, config) -> GateResult:
        missing = [name for name in REQUIRED_METRICS if name not in scalars]
        if missing:
            return GateResult(False, f"missing measurements: {', '.join(missing)}")
        return GateResult(True)

    def run(self, ctx: RunContext, method: Method) -> None:
        from tasks.probe import kernels

        kernels.run_probe(ctx, method, ctx.config)
