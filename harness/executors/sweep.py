"""Turning a `run` or `suite run` request into work items and handing them to an executor.

`plan_sweep` checks everything before anything starts (tasks, specs, methods, devices, executor
options), so a bad sweep costs no compute, exactly like a single run.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness.errors import InputError
from harness.executors.items import WorkItem
from harness.executors.pool import Slot, pool_slots
from harness.executors.slurm import SlurmOptions, require_cluster
from harness.run.runner import PreparedRun

EXECUTORS = ("local", "pool", "slurm")


@dataclass(frozen=True)
class ExecutorOptions:
    """The executor flags shared by `run` and `suite run`."""

    executor: str = "local"
    devices: str | None = None
    workers: int | None = None
    nproc_per_node: int = 1
    resume: bool = False
    slurm: SlurmOptions = field(default_factory=SlurmOptions)
    jobs_dir: Path | None = None
    wait: bool = False


@dataclass(frozen=True)
class Sweep:
    """Validated work: each item with its prepared run, and the pool's slots (if any)."""

    items: list[tuple[WorkItem, PreparedRun]]
    slots: list[Slot] | None
    """None: run in this process; otherwise each item runs in a worker on one of these."""


def plan_sweep(
    templates: list[WorkItem], seeds: int, device: str, options: ExecutorOptions
) -> Sweep:
    """Items for seeds 0..seeds-1 of each template, validated for where they will run."""
    if options.executor not in EXECUTORS:
        raise InputError(f"--executor must be one of {', '.join(EXECUTORS)}")
    if options.executor != "pool" and (options.devices or options.workers):
        raise InputError("--devices and --workers choose the slots of --executor pool")
    if options.executor != "slurm" and options.wait:
        raise InputError("--wait only applies to --executor slurm")
    slots: list[Slot] | None = None
    if options.executor == "pool":
        if device != "auto":
            raise InputError(
                "--device does not combine with --executor pool: --devices picks each"
                " worker's device"
            )
        slots = pool_slots(options.devices, options.workers, options.nproc_per_node)
        check_devices = sorted({slot.device for slot in slots})
    elif options.executor == "slurm":
        require_cluster(options.slurm)  # no sbatch: an error now, not a quiet local run
        check_devices = ["cpu"]  # the submitting machine may have no GPU; the job resolves it
    else:
        if options.nproc_per_node > 1:
            slots = [Slot("this machine", device)]
        check_devices = [device]
    sweep_id = uuid.uuid4().hex
    items = []
    for template in templates:
        prepared_runs = [template.on_device(each).prepare() for each in check_devices]
        task_cls = type(prepared_runs[0].task)
        if options.nproc_per_node > 1 and not task_cls.supports_data_parallel:
            raise InputError(
                f"task {template.task!r} does not support data parallelism"
                " (--nproc-per-node needs a task with supports_data_parallel)"
            )
        method = template.method or prepared_runs[0].method.name  # the default, named
        for seed in range(seeds):
            item = replace(template, method=method, seed=seed, sweep_id=sweep_id, device=device)
            items.append((item, prepared_runs[0]))
    return Sweep(items, slots)
