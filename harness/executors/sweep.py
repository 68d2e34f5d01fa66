"""Turning a `run` or `suite run` request into work items and handing them to an executor.

`plan_sweep` checks everything before anything starts (tasks, specs, methods, devices, executor
options), so a bad sweep costs no compute, exactly like a single run. `run_sweep` then runs it in
this process or a pool of workers, `submit_sweep` hands it to Slurm, and `run_confined` runs one
method's seeds in the sandbox. None of them prints: what a person sees goes through a `SweepView`.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from harness.errors import InputError
from harness.executors.attempts import run_item
from harness.executors.items import WorkItem
from harness.executors.pool import Slot, pool_slots, run_pool
from harness.executors.slurm import (
    JobRecord,
    SlurmOptions,
    default_jobs_dir,
    require_cluster,
    submit,
)
from harness.paths import cache_dir
from harness.run.machine import collect_fingerprint
from harness.run.recorder import Tracker
from harness.run.runner import PreparedRun, execute, save_machine
from harness.store import Store
from harness.store.records import RunRecord

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


def template(
    task: str,
    method_ref: str | None,
    profile: str,
    overrides: Iterable[str],
    suite_version: str | None,
    data_dir: Path | None,
) -> WorkItem:
    """The work item a sweep repeats for each seed (seed 0 here; `plan_sweep` sets the rest)."""
    return WorkItem(
        task=task,
        method=method_ref,
        profile=profile,
        seed=0,
        overrides=tuple(overrides),
        suite_version=suite_version,
        data_dir=str(Path(data_dir).resolve()) if data_dir else None,
    )


class SweepView(Protocol):
    """What a person sees while a sweep runs: the CLI passes its console
    (`harness.cli.running.ConsoleView`); the sweep itself prints nothing."""

    def progress(self) -> AbstractContextManager[Tracker | None]:
        """One progress display around the runs done in this process; yields the tracker."""
        ...

    def starting(self, item: WorkItem) -> None:
        """`item` starts now in this process."""
        ...

    def finished(self, outcome: RunRecord) -> None:
        """A run finished (here or in a worker), in the order they finish."""
        ...

    def note(self, line: str) -> None:
        """One line about the sweep (where the logs are, what went to them)."""
        ...

    def capture(self, log_file: Path) -> AbstractContextManager[Any]:
        """Send third-party output written during the block to `log_file`; the value it yields
        has `lines`, the count of lines captured, once the block is over."""
        ...


def logs_dir() -> Path:
    """Where runs executed in this process keep their logs: `<cache dir>/logs/<run id>.log`."""
    return cache_dir() / "logs"


def run_sweep(
    store: Store, db_url: str, sweep: Sweep, options: ExecutorOptions, view: SweepView
) -> list[RunRecord]:
    """Run a planned sweep here (local) or in a pool of workers; returns the outcomes in the
    order they finished, each shown with `view.finished` as it finishes."""
    outcomes: list[RunRecord] = []

    def finished(outcome: RunRecord) -> None:
        outcomes.append(outcome)
        view.finished(outcome)

    if sweep.slots is None:
        machine_id = save_machine(store, collect_fingerprint())
        with view.progress() as tracker:
            for item, prepared in sweep.items:
                view.starting(item)
                outcome, note = _run_logged(
                    store, item, prepared, machine_id, options.resume, tracker, view
                )
                finished(outcome)
                if note:
                    view.note(note)
    else:
        log_dir = Path(tempfile.mkdtemp(prefix="budgetbench-pool-"))
        labels = ", ".join(slot.label for slot in sweep.slots)
        view.note(f"{len(sweep.slots)} worker(s): {labels}; logs in {log_dir}")
        run_pool(
            store,
            db_url,
            [item for item, _ in sweep.items],
            sweep.slots,
            finished,
            resume=options.resume,
            nproc_per_node=options.nproc_per_node,
            log_dir=log_dir,
        )
    return outcomes


def _run_logged(
    store: Store,
    item: WorkItem,
    prepared: PreparedRun,
    machine_id: str,
    resume: bool,
    tracker: Tracker | None,
    view: SweepView,
) -> tuple[RunRecord, str | None]:
    """Run one item here with third-party output in its log file (`view.capture`); returns the
    outcome and a line saying how much went there (None when nothing did)."""
    pending = logs_dir() / f"pending-{item.sweep_id}-{item.task}-seed{item.seed}.log"
    with view.capture(pending) as captured:
        outcome = run_item(store, item, prepared, machine_id, resume=resume, tracker=tracker)
    if not captured.lines:
        pending.unlink(missing_ok=True)
        return outcome, None
    log_file = pending.with_name(f"{outcome.run_id}.log")
    pending.replace(log_file)
    return outcome, f"  {captured.lines} line(s) of third-party output (warnings...) in {log_file}"


def submit_sweep(
    db_url: str, sweep: Sweep, options: ExecutorOptions, note: Callable[[str], None]
) -> list[JobRecord]:
    """Submit the sweep as Slurm jobs (one per item) and return their records; `note` gets a
    warning when the store is one the jobs on other nodes cannot share safely."""
    jobs_dir = options.jobs_dir or default_jobs_dir()
    if db_url.startswith("sqlite") and options.slurm.cluster != "local":
        note(
            "warning: Slurm jobs on several nodes need a shared store: use --db postgresql://..."
            " (SQLite on a network filesystem is not safe)"
        )
    records, _jobs = submit(
        [item for item, _ in sweep.items],
        db_url,
        options.slurm,
        jobs_dir,
        resume=options.resume,
        nproc_per_node=options.nproc_per_node,
    )
    return records


def run_confined(
    store: Store, prepared: PreparedRun, seeds: int, view: SweepView
) -> list[RunRecord]:
    """`run --confine`: seeds 0..seeds-1 of a run prepared by `harness.run.confine`, each
    executed in the sandbox and stored here; returns the outcomes in seed order."""
    machine_id = save_machine(store, collect_fingerprint())
    outcomes = []
    with view.progress() as tracker:
        for outcome in execute(store, prepared, range(seeds), machine_id, tracker):
            outcomes.append(outcome)
            view.finished(outcome)
    return outcomes
