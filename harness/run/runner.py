"""The run lifecycle: prepare (validate everything), then execute seed by seed and store.

Guarantees:
- Everything that can be checked before work starts (task, spec, profile, overrides, method,
  device, database) is checked by `prepare`, so bad input costs no compute.
- A run is stored as `running` before the task starts. Scalar measurements are stored as they
  are recorded and curve points every `FLUSH_INTERVAL_S` (`harness.run.recorder`); the final
  results and the status change commit in one transaction. Readers never see a succeeded run
  with missing measurements, and a crash leaves a failed run with what was recorded so far: an
  exception or Ctrl-C is caught here, and a run whose process died outright (SIGKILL, out of
  memory) is marked failed later (`harness.run.liveness`).
- Ctrl-C or SIGTERM marks the run failed ("interrupted") before the process stops.

The run goes runner -> task -> store and never climbs back; what comes back is the stored run,
a `RunRecord`.
"""

from __future__ import annotations

import json
import random
import re
import time
import traceback
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import InputError
from harness.extras import require_extra
from harness.registry import load_task
from harness.run.liveness import Heartbeat, utcnow
from harness.run.machine import MachineFingerprint
from harness.run.methods import load_method
from harness.run.provenance import provenance
from harness.run.recorder import RunRecorder, Tracker
from harness.spec import ResolvedConfig, TaskSpec, load_spec, parse_overrides, resolve_config
from harness.store import Store
from harness.store.queries import get_machine, run_by_id
from harness.store.records import MachineRecord, RunRecord
from harness.store.runs import finish_run, insert_running_run
from harness.store.runs import save_machine as store_machine
from tasks.base import Method, Task


class Interrupted(BaseException):
    """Raised in the main thread on SIGTERM, so the run in progress is marked failed."""


@dataclass(frozen=True)
class PreparedRun:
    """Everything a run needs, checked: safe to execute for any number of seeds."""

    task: Task
    spec: TaskSpec
    resolved: ResolvedConfig
    method: Method
    device: str
    data_dir: Path | None = None


def prepare(
    task_name: str,
    method_ref: str | None = None,
    profile: str = "smoke",
    device: str = "auto",
    overrides: Iterable[str] = (),
    suite_version: str | None = None,
    data_dir: Path | None = None,
) -> PreparedRun:
    """Resolve and validate a run request; raises InputError naming the first problem."""
    if data_dir is not None and not data_dir.is_dir():
        raise InputError(f"--data-dir {data_dir} is not a directory")
    task_cls = load_task(task_name)
    require_extra(task_name, f"task {task_name!r}")  # before its method imports a missing library
    settings, hyperparameters = parse_overrides(list(overrides))
    spec = load_spec(task_name, suite_version)
    resolved = resolve_config(task_cls, spec, profile, settings)
    method = load_method(
        task_cls, method_ref or task_cls.default_method(resolved.config), hyperparameters
    )
    task = task_cls()
    try:
        task.check_method(method, resolved.config)
    except ValueError as exc:
        raise InputError(
            f"method {method.name!r} breaks the rules of task {task_name!r}: {exc}"
        ) from exc
    try:
        task.check_inputs(resolved.config, data_dir)
    except ValueError as exc:
        raise InputError(f"task {task_name!r}, profile {profile!r}: {exc}") from exc
    return PreparedRun(task, spec, resolved, method, resolve_device(device, task_cls), data_dir)


def resolve_device(requested: str, task_cls: type) -> str:
    """Turn auto|cpu|cuda|cuda:N into a concrete torch device, or explain why it cannot."""
    import torch

    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() and task_cls.supports_cuda else "cpu"
    if requested == "cpu":
        return "cpu"
    match = re.fullmatch(r"cuda(?::(\d+))?", requested)
    if not match:
        raise InputError(f"--device must be auto, cpu, cuda or cuda:N, got {requested!r}")
    if not torch.cuda.is_available():
        raise InputError(
            f"--device {requested}: no CUDA device is available"
            f" (torch {torch.__version__}, CUDA build {torch.version.cuda or 'none'})"
        )
    index = int(match.group(1) or 0)
    if index >= torch.cuda.device_count():
        raise InputError(f"--device {requested}: only {torch.cuda.device_count()} CUDA device(s)")
    if not task_cls.supports_cuda:
        raise InputError(f"task {task_cls.name!r} does not run on CUDA")
    return f"cuda:{index}"


def save_machine(store: Store, fingerprint: MachineFingerprint) -> str:
    """Store this machine's fingerprint if it is new; returns its id."""
    return store_machine(
        store,
        MachineRecord(
            id=fingerprint.id,
            hardware_key=fingerprint.hardware_key,
            software_key=fingerprint.software_key,
            hardware_label=fingerprint.hardware_label,
            fingerprint=fingerprint.as_dict(),
            first_seen_at=utcnow(),
        ),
    )


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators: the same seed gives the same run."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _json_safe(value: Any) -> Any:
    """Notes as JSON can hold them: unknown objects become their text."""
    return json.loads(json.dumps(value, default=str))


def execute(
    store: Store,
    prepared: PreparedRun,
    seeds: Iterable[int],
    machine_id: str,
    tracker: Tracker | None = None,
) -> Iterator[RunRecord]:
    """Run `prepared` once per seed, yielding each run as it was stored.

    On Ctrl-C or SIGTERM the run in progress is stored as failed and the interrupt propagates.
    """
    for seed in seeds:
        yield execute_run(store, prepared, seed, machine_id, tracker)


def execute_run(
    store: Store,
    prepared: PreparedRun,
    seed: int,
    machine_id: str,
    tracker: Tracker | None = None,
    run_id: str | None = None,
) -> RunRecord:
    """Run `prepared` once with `seed`, store it under `run_id` (default: a fresh uuid) and
    return it as stored.

    Raises RunIdTaken (`harness.store.runs`), before any work, when a run with `run_id` is
    already stored: a retried item never writes a second copy of itself. Ctrl-C or SIGTERM: as
    `execute`.
    """
    run_id = run_id or uuid.uuid4().hex
    started_at = utcnow()
    with store.session() as session:
        machine = get_machine(session, machine_id)
    assert machine is not None, "save_machine() first"
    insert_running_run(
        store,
        RunRecord(
            id=run_id,
            task=prepared.spec.task,
            suite_version=prepared.spec.suite_version,
            spec_version=prepared.spec.version,
            task_spec_hash=prepared.resolved.task_spec_hash,
            profile=prepared.resolved.profile,
            method_name=prepared.method.name,
            method_hash=prepared.method.method_hash,
            method_description=prepared.method.description,
            is_reference_method=prepared.method.is_reference,
            seed=seed,
            device=prepared.device,
            status="running",
            error=None,
            gate_passed=None,
            gate_reason="",
            settings=prepared.resolved.settings,
            hyperparameters=dict(prepared.method.hyperparameters),
            provenance=provenance(prepared.method),
            machine_id=machine_id,
            hardware_key=machine.hardware_key,
            software_key=machine.software_key,
            started_at=started_at,
            heartbeat_at=started_at,
        ),
    )

    recorder = RunRecorder(store, run_id, prepared, seed, tracker)
    status, error = "succeeded", None
    interrupt: BaseException | None = None
    started = time.perf_counter()
    with Heartbeat(store, run_id):
        try:
            seed_everything(seed)
            prepared.task.run(recorder, prepared.method)
        except (KeyboardInterrupt, Interrupted) as exc:
            status, error, interrupt = "failed", f"interrupted ({type(exc).__name__})", exc
        except Exception as exc:
            status = "failed"
            error = f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc()}"
    wall_s = time.perf_counter() - started

    gate_passed, gate_reason = None, ""
    if status == "succeeded":
        values = {name: value for name, (value, _unit) in recorder.scalars.items()}
        gate = prepared.task.quality_gate(values, prepared.resolved.config)
        gate_passed, gate_reason = gate.passed, gate.reason

    extra: dict[str, Any] = {}
    if recorder.notes or prepared.data_dir:
        extra["task_notes"] = _json_safe(recorder.notes)
        if prepared.data_dir:
            extra["data_dir"] = str(prepared.data_dir)
    finish_run(
        store,
        run_id,
        recorder.take_pending(),
        status=status,
        error=error,
        gate_passed=gate_passed,
        gate_reason=gate_reason,
        wall_s=wall_s,
        timed_s=recorder.clock.timed_s,
        provenance_extra=extra,
    )
    if interrupt is not None:
        raise interrupt
    with store.session() as session:
        stored = run_by_id(session, run_id)
    assert stored is not None
    return stored
