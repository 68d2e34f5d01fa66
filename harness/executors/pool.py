"""The pool executor: a worker process per device slot, fed from a queue of work items.

Each item runs in a fresh `python -m harness.executors.worker` process (under torchrun when a run
spans
several processes), pinned to its slot's devices with CUDA_VISIBLE_DEVICES, and writes its own
run to the shared store. A fresh process per run keeps runs independent (no allocator or
compilation state carried over) and makes a crash cost exactly one run:

- A worker that dies (SIGKILL, out of memory, a segfault) leaves its run `running`; the pool
  marks it failed at once (`reap_dead_runs`: same host, its pid is gone) and starts the next item.
- Ctrl-C or SIGTERM stops the pool: no new item starts, every worker gets SIGTERM and stores its
  run as failed ("interrupted"), one that does not stop within `STOP_GRACE_S` is killed and
  reaped, and the interrupt propagates (exit 130).

Workers run in their own session, so a terminal's Ctrl-C reaches the pool alone, which then stops
the workers in order.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness.errors import InputError
from harness.executors import SKIPPED, OutcomeCallback, WorkItem, latest_outcome
from harness.executors.attempts import skipped
from harness.run.liveness import reap_dead_runs, utcnow
from harness.run.runner import Interrupted
from harness.store import Store
from harness.store.queries import run_by_id
from harness.store.records import RunRecord

POLL_S = 0.2
STOP_GRACE_S = 30.0


@dataclass(frozen=True)
class Slot:
    """Where one worker runs: the --device it gets and the environment that pins it."""

    label: str
    device: str
    env: dict[str, str] = field(default_factory=dict)


def pool_slots(devices: str | None, workers: int | None, nproc_per_node: int) -> list[Slot]:
    """Slots from `--devices 0,1,...|cpu,cpu` or `--workers N` (N CPU workers).

    GPU indices are grouped `nproc_per_node` at a time (one torchrun launch per group); each `cpu`
    entry is one slot. CPU workers share the cores: each gets an equal share of threads
    (OMP_NUM_THREADS) unless the caller set OMP_NUM_THREADS.
    """
    if devices and workers:
        raise InputError("give --devices or --workers, not both")
    if workers:
        entries = ["cpu"] * workers
    elif devices:
        entries = [entry.strip() for entry in devices.split(",") if entry.strip()]
    else:
        raise InputError("--executor pool needs --devices 0,1,... (GPUs) or --workers N (CPUs)")
    gpus = [entry for entry in entries if entry != "cpu"]
    bad = [entry for entry in gpus if not entry.isdigit()]
    if bad:
        raise InputError(f"--devices: {bad[0]!r} is neither a GPU index nor 'cpu'")
    if len(set(gpus)) != len(gpus):
        raise InputError("--devices: a GPU is listed twice")
    if len(gpus) % nproc_per_node:
        raise InputError(
            f"--devices: {len(gpus)} GPUs do not split into groups of --nproc-per-node"
            f" {nproc_per_node}"
        )
    _check_gpu_indices(gpus)
    slots = [
        Slot(f"cuda {','.join(group)}", "cuda", {"CUDA_VISIBLE_DEVICES": ",".join(group)})
        for group in (
            gpus[start : start + nproc_per_node] for start in range(0, len(gpus), nproc_per_node)
        )
    ]
    cpu_slots = len(entries) - len(gpus)
    threads = max(1, (os.cpu_count() or 1) // max(1, cpu_slots * nproc_per_node))
    cpu_env = {"CUDA_VISIBLE_DEVICES": ""}
    if "OMP_NUM_THREADS" not in os.environ:
        cpu_env["OMP_NUM_THREADS"] = str(threads)
    slots += [Slot(f"cpu {index}", "cpu", cpu_env) for index in range(cpu_slots)]
    return slots


def _check_gpu_indices(gpus: list[str]) -> None:
    if not gpus:
        return
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    missing = [index for index in gpus if int(index) >= count]
    if missing:
        raise InputError(f"--devices: GPU {missing[0]} does not exist ({count} CUDA device(s))")


def worker_command(
    item: WorkItem, device: str, outcome_file: Path, *, resume: bool, nproc_per_node: int
) -> list[str]:
    """The command that runs one item: the harness worker, under torchrun for several ranks."""
    if nproc_per_node > 1:
        launcher = [
            sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={nproc_per_node}", "-m", "harness.executors.worker",
        ]  # fmt: skip
    else:
        launcher = [sys.executable, "-m", "harness.executors.worker"]
    options = ["--device", device, "--outcome-file", str(outcome_file)]
    return [*launcher, *options, *(["--resume"] if resume else []), item.to_json()]


@dataclass
class _Running:
    item: WorkItem
    slot: Slot
    process: subprocess.Popen
    outcome_file: Path
    log_file: Path


def run_pool(
    store: Store,
    db_url: str,
    items: Iterable[WorkItem],
    slots: list[Slot],
    on_outcome: OutcomeCallback,
    *,
    resume: bool = False,
    nproc_per_node: int = 1,
    log_dir: Path | None = None,
) -> Path:
    """Run every item on the first free slot, calling `on_outcome` as each one finishes.

    Returns the directory holding each worker's log. `store` is the store `db_url` names (the
    pool reads outcomes and reaps dead workers' runs through it).
    """
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="budgetbench-pool-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    pending = deque(enumerate(items))
    running: dict[int, _Running] = {}
    try:
        while pending or running:
            for index, slot in enumerate(slots):
                if index not in running and pending:
                    number, item = pending.popleft()
                    running[index] = _launch(
                        item, slot, number, db_url, log_dir, resume, nproc_per_node
                    )
            time.sleep(POLL_S)
            for index, job in list(running.items()):
                if job.process.poll() is not None:
                    del running[index]
                    on_outcome(_collect(store, job))
    except (KeyboardInterrupt, Interrupted):
        _stop(store, list(running.values()))
        raise
    return log_dir


def _launch(
    item: WorkItem,
    slot: Slot,
    number: int,
    db_url: str,
    log_dir: Path,
    resume: bool,
    nproc_per_node: int,
) -> _Running:
    stem = f"{number:04d}-{item.task}-seed{item.seed}"
    outcome_file = log_dir / f"{stem}.outcome.json"
    log_file = log_dir / f"{stem}.log"
    command = worker_command(
        item, slot.device, outcome_file, resume=resume, nproc_per_node=nproc_per_node
    )
    env = {**os.environ, **slot.env, "BUDGETBENCH_DB": db_url}
    with log_file.open("w") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    return _Running(item, slot, process, outcome_file, log_file)


def _collect(store: Store, job: _Running) -> RunRecord:
    """The run the worker stored and named in its outcome file, or, if it died first, its run
    marked failed."""
    if job.outcome_file.is_file():
        return _reported(store, job.outcome_file.read_text())
    code = job.process.returncode
    how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
    reap_dead_runs(store)
    stored = latest_outcome(store, job.item)
    if stored is not None and stored.status != "running":
        return stored
    error = f"worker on {job.slot.label} {how}: {_last_line(job.log_file)} (log {job.log_file})"
    if stored is not None:
        return replace(stored, status="failed", error=error)
    return _unstored_failure(job.item, error)


def _reported(store: Store, outcome_json: str) -> RunRecord:
    """The stored run a worker's outcome (`RunRecord.outcome_json`) names."""
    outcome = json.loads(outcome_json)
    with store.session() as session:
        stored = run_by_id(session, outcome["run_id"])
    if stored is None:
        raise RuntimeError(f"a worker reported run {outcome['run_id']}, which is not stored")
    return skipped(stored) if outcome["status"] == SKIPPED else stored


def _unstored_failure(item: WorkItem, error: str) -> RunRecord:
    """The outcome of an item whose worker died before it stored a run: no id, and the fields
    only a stored run has left blank."""
    return RunRecord(
        id="",
        task=item.task,
        suite_version=item.suite_version or "",
        spec_version=0,
        task_spec_hash="",
        profile=item.profile,
        method_name=item.method or "",
        method_hash="",
        method_description="",
        is_reference_method=False,
        seed=item.seed,
        device=item.device,
        status="failed",
        error=error,
        gate_passed=None,
        gate_reason="",
        settings={},
        hyperparameters={},
        provenance={},
        machine_id="",
        hardware_key="",
        software_key="",
        started_at=utcnow(),
        wall_s=0.0,
    )


def _last_line(path: Path) -> str:
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no output"


def _stop(store: Store, running: list[_Running]) -> None:
    """SIGTERM every worker, wait for them to store their runs, kill stragglers and reap."""
    for job in running:
        if job.process.poll() is None:
            job.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for job in running:
        try:
            job.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            job.process.kill()
            job.process.wait()
    reap_dead_runs(store)
