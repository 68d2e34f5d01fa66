"""Collective-communication bandwidth: all-reduce, all-gather and broadcast across message sizes.

A multi-GPU job lives on its interconnect as much as on its GPUs; the probe measures one device
alone. This runs the collectives of torch.distributed on every rank of a torchrun launch (gloo on
CPU, NCCL on GPU) and reports, per operation and message size, nccl-tests' two numbers
(github.com/NVIDIA/nccl-tests, doc/PERFORMANCE.md):

- algbw = S / t, with S the message size in bytes (for all-gather: the gathered output, every
  rank's part) and t the time of one operation;
- busbw = algbw x a factor that makes the number comparable with the hardware's link bandwidth
  whatever the rank count n: 2(n-1)/n for all-reduce, (n-1)/n for all-gather, 1 for broadcast.

t is, as nccl-tests' default (`-a 1`), the mean over ranks of each rank's mean time per operation
over `iters` timed operations after `warmup` untimed ones. Unlike nccl-tests (in-place and
out-of-place variants, CUDA graphs, several operations in flight) each operation here is one
blocking call of torch.distributed, out of place for all-gather and in place otherwise; every
result is checked (`check`) once before timing.

Run as `python -m torch.distributed.run --nproc-per-node N -m harness.collectives ...`;
`budgetbench collectives` does that and prints rank 0's results.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.errors import InputError

OPERATIONS = ("all_reduce", "all_gather", "broadcast")
DEFAULT_SIZES = tuple(2**power for power in range(10, 25, 2))  # 1 KiB .. 16 MiB
ELEMENT_BYTES = 4  # float32


@dataclass(frozen=True)
class Result:
    operation: str
    size_bytes: int
    """S: the message (for all-gather, the gathered output)."""
    ranks: int
    backend: str
    time_s: float
    algbw_gbps: float
    busbw_gbps: float


def bus_factor(operation: str, ranks: int) -> float:
    """nccl-tests' busbw / algbw for `operation` on `ranks` ranks."""
    if operation == "all_reduce":
        return 2 * (ranks - 1) / ranks
    if operation == "all_gather":
        return (ranks - 1) / ranks
    if operation == "broadcast":
        return 1.0
    raise ValueError(f"unknown collective {operation!r}")


def result(operation: str, size_bytes: int, ranks: int, backend: str, time_s: float) -> Result:
    algbw = size_bytes / time_s / 1e9
    return Result(
        operation, size_bytes, ranks, backend, time_s, algbw, algbw * bus_factor(operation, ranks)
    )


def measure(sizes: tuple[int, ...], iters: int, warmup: int, device: str) -> list[Result] | None:
    """On every rank of an initialised process group: each operation at each size. Returns the
    results on rank 0, None elsewhere."""
    import torch
    import torch.distributed as dist

    rank, ranks = dist.get_rank(), dist.get_world_size()
    backend = str(dist.get_backend())
    results = []
    for operation in OPERATIONS:
        for size in sizes:
            elements = max(1, size // ELEMENT_BYTES // (ranks if operation == "all_gather" else 1))
            run = _Operation(operation, elements, rank, ranks, device)
            run()
            _check(operation, run, rank, ranks)
            if operation == "all_reduce":
                run.input.zero_()  # repeated in-place sums would grow to inf
            for _ in range(warmup):
                run()
            _synchronize(device)
            dist.barrier()
            started = time.perf_counter()
            for _ in range(iters):
                run()
            _synchronize(device)
            seconds = (time.perf_counter() - started) / iters
            summed = torch.tensor([seconds], dtype=torch.float64, device=device)
            dist.all_reduce(summed)  # the mean over ranks, as nccl-tests reports by default
            mean_s = float(summed.cpu()) / ranks
            size_bytes = elements * ELEMENT_BYTES * (ranks if operation == "all_gather" else 1)
            results.append(result(operation, size_bytes, ranks, backend, mean_s))
    return results if rank == 0 else None


class _Operation:
    """One collective on preallocated buffers; `output` holds what `check` inspects."""

    def __init__(self, operation: str, elements: int, rank: int, ranks: int, device: str):
        import torch

        self.operation = operation
        self.input = torch.full((elements,), float(rank + 1), device=device)
        self.output = (
            torch.empty(elements * ranks, device=device) if operation == "all_gather" else None
        )

    def __call__(self) -> None:
        import torch.distributed as dist

        if self.operation == "all_reduce":
            dist.all_reduce(self.input)
        elif self.operation == "all_gather":
            dist.all_gather_into_tensor(self.output, self.input)
        else:
            dist.broadcast(self.input, src=0)


def _check(operation: str, run: _Operation, rank: int, ranks: int) -> None:
    """The first call's result is what the collective promises (rank r contributes r + 1)."""
    import torch

    if operation == "all_reduce":
        expected = torch.full_like(run.input, ranks * (ranks + 1) / 2)
        ok = torch.equal(run.input, expected)
    elif operation == "all_gather":
        parts = run.output.view(ranks, -1)
        ok = all(bool((parts[r] == r + 1).all()) for r in range(ranks))
    else:
        ok = bool((run.input == 1.0).all())
    if not ok:
        raise RuntimeError(f"{operation} returned a wrong result on rank {rank}")


def _synchronize(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def launch(
    nproc: int, device: str, sizes: tuple[int, ...], iters: int, warmup: int
) -> list[Result]:
    """Run the measurement under torchrun on this machine with `nproc` ranks; rank 0's results."""
    if nproc < 2:
        raise InputError("--nproc-per-node must be at least 2: a collective needs two ranks")
    if device not in ("cpu", "cuda"):
        raise InputError("--device must be cpu (gloo) or cuda (NCCL)")
    if device == "cuda":
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count < nproc:
            raise InputError(f"--device cuda with {nproc} ranks needs {nproc} GPUs ({count} here)")
    with tempfile.TemporaryDirectory(prefix="budgetbench-collectives-") as scratch:
        output = Path(scratch) / "results.json"
        command = [
            sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={nproc}", "-m", "harness.collectives", "--device", device,
            "--sizes", ",".join(map(str, sizes)), "--iters", str(iters),
            "--warmup", str(warmup), "--output", str(output),
        ]  # fmt: skip
        env = {**os.environ, **({"OMP_NUM_THREADS": "1"} if device == "cpu" else {})}
        finished = subprocess.run(command, capture_output=True, text=True, env=env)
        if finished.returncode != 0 or not output.is_file():
            lines = (finished.stderr or finished.stdout).strip().splitlines() or ["no output"]
            raise RuntimeError(f"torchrun exited {finished.returncode}: {lines[-1]}")
        return [Result(**row) for row in json.loads(output.read_text())]


def main(argv: list[str] | None = None) -> int:
    """One rank (under torchrun): join the group, measure, rank 0 writes the results."""
    import torch
    import torch.distributed as dist

    parser = argparse.ArgumentParser(prog="python -m harness.collectives")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)))
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    device = args.device
    if device == "cuda":
        local_rank = int(os.environ["LOCAL_RANK"])
        torch.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
        dist.init_process_group("nccl", device_id=torch.device(device))
    else:
        dist.init_process_group("gloo")
    try:
        sizes = tuple(int(size) for size in args.sizes.split(","))
        results = measure(sizes, args.iters, args.warmup, device)
    finally:
        dist.destroy_process_group()
    if results is not None:
        args.output.write_text(json.dumps([asdict(r) for r in results]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
