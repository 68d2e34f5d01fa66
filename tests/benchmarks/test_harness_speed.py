"""Our own speed (pytest-benchmark): run with `pytest tests/benchmarks --benchmark-only`.

- CLI start-up: `budgetbench --help` stays under 0.5 s (torch and tasks load lazily).
- Store overhead: a whole run whose task work is tiny (so what remains is the harness: store,
  bookkeeping, provenance) stays under 0.5 s, a small fraction of any real run (about 0.23 s
  measured on the 2-core CI machine at load 19).
"""

from __future__ import annotations

import subprocess
import sys

from harness.run.machine import collect_fingerprint
from harness.run.runner import execute, prepare, save_machine
from harness.store import open_store

CLI_HELP_BOUND_S = 0.5
RUN_OVERHEAD_BOUND_S = 0.5


def test_cli_help_startup(benchmark):
    command = [sys.executable, "-c", "from harness.cli import main; main()", "--help"]
    benchmark.pedantic(
        lambda: subprocess.run(command, check=True, capture_output=True), rounds=10, warmup_rounds=1
    )
    assert benchmark.stats.stats.median < CLI_HELP_BOUND_S


def test_harness_overhead_of_a_minimal_probe_run(benchmark, tmp_path):
    """A whole run whose task work is tiny: what remains is the harness (store, bookkeeping)."""
    store = open_store(f"sqlite:///{tmp_path / 'bench.db'}")
    tiny = ["matmul_size=8", 'matmul_dtypes=["float32"]', "copy_mib=1", "attention_seq_len=8",
            "attention_heads=1", "warmup=0", "repeats=1", "min_repeat_s=0.000001"]  # fmt: skip
    prepared = prepare("probe", None, "smoke", "cpu", tiny)
    machine_id = save_machine(store, collect_fingerprint())
    benchmark(lambda: list(execute(store, prepared, [0], machine_id)))
    assert benchmark.stats.stats.median < RUN_OVERHEAD_BOUND_S
