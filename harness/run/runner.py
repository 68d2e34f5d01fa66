"""The run lifecycle: prepare (validate everything), then execute seed by seed and store.

Guarantees:
- Everything that can be checked before work starts (task, spec, profile, overrides, method,
  device, database) is checked by `prepare`, so bad input costs no compute.
- A run row is written as `running` before the task starts. Scalar measurements commit as they
  are recorded and curve points every `FLUSH_INTERVAL_S`; the final flush and the status change
  commit in one transaction. Readers never see a succeeded run with missing measurements, and a
  crash leaves a failed run with what was recorded so far: an exception or Ctrl-C is caught here,
  and a run whose process died outright (SIGKILL, out of memory) is marked failed by
  `reap_dead_runs` the next time budgetbench runs or lists runs on that host, or on any host once
  its heartbeat (refreshed every `HEARTBEAT_INTERVAL_S` while it runs) is `HEARTBEAT_STALE_S` old.
- Ctrl-C or SIGTERM marks the run failed ("interrupted") before the process stops.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import math
import mimetypes
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from harness import __version__
from harness.errors import InputError
from harness.extras import require_extra
from harness.paths import CHECKOUT_DIR, cache_dir, is_checkout
from harness.registry import load_task
from harness.run.machine import MachineFingerprint
from harness.run.methods import load_method
from harness.spec import ResolvedConfig, TaskSpec, load_spec, parse_overrides, resolve_config
from harness.store import Store
from harness.store.models import Artifact, CurvePoint, Machine, Measurement, Run
from tasks.base import BudgetClock, Method, Task

T = TypeVar("T")
FLUSH_INTERVAL_S = 2.0
HEARTBEAT_INTERVAL_S = 30.0
HEARTBEAT_STALE_S = 300.0  # ten missed heartbeats: the process is gone (or its host is)

# Shows a progress bar over an iterable: (items, description, total) -> items.
Tracker = Callable[[Iterable[Any], str, int | None], Iterable[Any]]


class Interrupted(BaseException):
    """Raised in the main thread on SIGTERM, so the run in progress is marked failed."""


class RunIdTaken(Exception):
    """A run with the requested id is already stored (a retried work item; see executors)."""


@dataclass(frozen=True)
class PreparedRun:
    """Everything a run needs, checked: safe to execute for any number of seeds."""

    task: Task
    spec: TaskSpec
    resolved: ResolvedConfig
    method: Method
    device: str
    data_dir: Path | None = None


@dataclass(frozen=True)
class RunOutcome:
    run_id: str
    task: str
    method_name: str
    profile: str
    seed: int
    status: str
    error: str | None
    gate_passed: bool | None
    gate_reason: str
    wall_s: float
    scalars: dict[str, tuple[float, str]] = field(default_factory=dict)


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
    """Insert the machine row if it is new (concurrent writers may race: both are fine)."""
    from sqlalchemy.exc import IntegrityError

    with store.session() as session:
        if session.get(Machine, fingerprint.id) is not None:
            return fingerprint.id
        session.add(
            Machine(
                id=fingerprint.id,
                hardware_key=fingerprint.hardware_key,
                software_key=fingerprint.software_key,
                hardware_label=fingerprint.hardware_label,
                fingerprint=fingerprint.as_dict(),
                first_seen_at=utcnow(),
            )
        )
        try:
            session.commit()
        except IntegrityError:  # another process inserted the same machine first
            session.rollback()
    return fingerprint.id


def reap_dead_runs(store: Store, stale_after_s: float = HEARTBEAT_STALE_S) -> list[str]:
    """Mark failed the `running` runs whose process is gone; returns the ids it marked.

    On this host a process is matched by pid and by having started before its run did, so a
    recycled pid is not mistaken for the original. A run of another host (a shared store) is
    judged by its heartbeat: silent for `stale_after_s`, its process or its machine is gone.
    Runs without a heartbeat (stored before schema 0003) on other hosts are left alone.
    """
    from sqlalchemy import select

    now = utcnow()
    reaped = []
    with store.session() as session:
        for run in session.scalars(select(Run).where(Run.status == "running")):
            reason = why_dead(run, stale_after_s)
            if reason is None:
                continue
            run.status, run.error, run.finished_at = "failed", reason, now
            reaped.append(run.id)
        session.commit()
    return reaped


def why_dead(run: Run, stale_after_s: float = HEARTBEAT_STALE_S) -> str | None:
    """Why a `running` run's process is known to be gone, or None if it may be alive."""
    import psutil

    host = socket.gethostname()
    pid = run.provenance.get("pid")
    run_host = run.provenance.get("hostname")
    if run_host == host and isinstance(pid, int):
        if _process_alive_since(psutil, pid, run.started_at):
            return None
        return f"the process running it (pid {pid} on {host}) died without finishing it"
    if run.heartbeat_at is None:
        return None
    silent_s = (utcnow() - run.heartbeat_at).total_seconds()
    if silent_s < stale_after_s:
        return None
    return (
        f"no heartbeat from its process (pid {pid} on {run_host}) for {silent_s:.0f} s:"
        " it died without finishing it"
    )


class Heartbeat:
    """A daemon thread that stamps a running run's `heartbeat_at` every `interval_s`.

    It proves the process is alive to `reap_dead_runs` on other hosts, where a pid means nothing.
    A failed stamp (database briefly unreachable) is skipped: the next one may succeed, and a run
    is only reaped after many missed stamps.
    """

    def __init__(self, store: Store, run_id: str, interval_s: float | None = None) -> None:
        self._store = store
        self._run_id = run_id
        self._interval_s = HEARTBEAT_INTERVAL_S if interval_s is None else interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name="budgetbench-heartbeat", daemon=True
        )

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        from sqlalchemy import update

        while not self._stop.wait(self._interval_s):
            try:
                with self._store.session() as session:
                    session.execute(
                        update(Run)
                        .where(Run.id == self._run_id, Run.status == "running")
                        .values(heartbeat_at=utcnow())
                    )
                    session.commit()
            except Exception:  # a missed beat is harmless; see the docstring
                pass


def _process_alive_since(psutil, pid: int, started_at: datetime) -> bool:
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        created = process.create_time()
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # someone else's live process: not ours to judge
        return True
    return created <= started_at.timestamp() + 1.0


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def provenance(method: Method) -> dict[str, Any]:
    """Where a run came from: versions, command, host, and the method's source files."""
    info: dict[str, Any] = {
        "budgetbench_version": __version__,
        "command": sys.argv,
        "hostname": socket.gethostname(),
        "user": _user(),
        "pid": os.getpid(),
        "method_sources": [str(path) for path in method.source_files],
    }
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size > 1:  # one run across several processes (torchrun)
        info["world_size"] = world_size
    info.update(_slurm_job())
    if is_checkout():
        info.update(_git_state())
    return info


def _slurm_job() -> dict[str, Any]:
    """Inside a Slurm job: its id as squeue and `budgetbench jobs` show it (ARRAYID_TASK for a
    job array) and how often it was requeued."""
    if "SLURM_JOB_ID" not in os.environ:
        return {}
    array_id, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    job_id = f"{array_id}_{task}" if array_id and task else os.environ["SLURM_JOB_ID"]
    return {
        "slurm_job_id": job_id,
        "slurm_restart_count": int(os.environ.get("SLURM_RESTART_COUNT", "0")),
    }


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def _git_state() -> dict[str, Any]:
    def git(*args: str) -> str | None:
        try:
            result = subprocess.run(
                ["git", "-C", str(CHECKOUT_DIR), *args], capture_output=True, text=True, timeout=5
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return result.stdout.strip() if result.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {}
    return {"git_commit": commit, "git_dirty": bool(git("status", "--porcelain"))}


class RunRecorder:
    """The `RunContext` a task sees: records measurements and flushes them to the store.

    With `store=None` it checks and then drops everything (artifacts included): the context of a
    data-parallel rank other than 0, whose run is stored by rank 0 alone.
    """

    def __init__(
        self,
        store: Store | None,
        run_id: str,
        prepared: PreparedRun,
        seed: int,
        tracker: Tracker | None,
    ) -> None:
        self.config = prepared.resolved.config
        self.seed = seed
        self.device = prepared.device
        self.clock = BudgetClock(getattr(self.config, "budget_s", None))
        self.data_dir = prepared.data_dir
        self.cache_dir = cache_dir()
        self.artifact_dir = (
            store.artifact_root / run_id
            if store is not None  # a rank other than 0: its files are not the run's; a scratch dir
            else Path(tempfile.gettempdir()) / f"budgetbench-rank-{os.getpid()}"
        )
        self.notes: dict[str, Any] = {}
        self._store = store
        self._run_id = run_id
        self._task = prepared.task
        self._tracker = tracker
        self._pending: list[Measurement | CurvePoint | Artifact] = []
        self._artifact_names: set[str] = set()
        self.scalars: dict[str, tuple[float, str]] = {}
        self._last_flush = time.monotonic()

    def record(self, name: str, value: float, *, samples: list[float] | None = None) -> None:
        metric = self._task.metric(name)
        if metric.is_curve:
            raise ValueError(f"{name!r} is a curve: use record_point")
        if name in self.scalars:
            raise ValueError(f"measurement {name!r} recorded twice in one run")
        value = _finite(name, value)
        clean_samples = [_finite(name, s) for s in samples] if samples is not None else None
        self.scalars[name] = (value, metric.unit)
        self._pending.append(
            Measurement(
                run_id=self._run_id,
                name=name,
                value=value,
                unit=metric.unit,
                higher_is_better=metric.higher_is_better,
                samples=clean_samples,
            )
        )
        self._flush()

    def record_point(self, name: str, x: float, value: float) -> None:
        metric = self._task.metric(name)
        if not metric.is_curve:
            raise ValueError(f"{name!r} is a scalar metric: use record")
        assert metric.x_unit is not None
        self._pending.append(
            CurvePoint(
                run_id=self._run_id,
                metric=name,
                x=_finite(name, x),
                x_unit=metric.x_unit,
                value=_finite(name, value),
                unit=metric.unit,
            )
        )
        self._maybe_flush()

    def note(self, key: str, value: Any) -> None:
        self.notes[key] = value

    def save_artifact(self, name: str, path: Path, media_type: str | None = None) -> None:
        if name in self._artifact_names:
            raise ValueError(f"artifact {name!r} saved twice in one run")
        path = Path(path).resolve()
        if not path.is_file():
            raise ValueError(f"artifact {name!r}: {path} is not a file")
        guessed, _ = mimetypes.guess_type(path.name)
        self._artifact_names.add(name)
        self._pending.append(
            Artifact(
                run_id=self._run_id,
                name=name,
                uri=path.as_uri(),
                media_type=media_type or guessed or "application/octet-stream",
                size_bytes=path.stat().st_size,
                sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
            )
        )
        self._flush()

    def track(self, items: Iterable[T], description: str, total: int | None = None) -> Iterable[T]:
        if self._tracker is None:
            return items
        return self._tracker(items, description, total)

    def _maybe_flush(self) -> None:
        if time.monotonic() - self._last_flush >= FLUSH_INTERVAL_S:
            self._flush()

    def _flush(self) -> None:
        if self._store is None:
            self._pending = []
            return
        with self._store.session() as session:
            self.flush_into(session)
            session.commit()

    def flush_into(self, session) -> None:
        """Add pending measurements to `session` (the caller commits)."""
        session.add_all(self._pending)
        self._pending = []
        self._last_flush = time.monotonic()


def _json_safe(value: Any) -> Any:
    """Notes as JSON can hold them: unknown objects become their text."""
    return json.loads(json.dumps(value, default=str))


def _finite(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"measurement {name!r} is not finite ({value})")
    return value


def execute(
    store: Store,
    prepared: PreparedRun,
    seeds: Iterable[int],
    machine_id: str,
    tracker: Tracker | None = None,
) -> Iterator[RunOutcome]:
    """Run `prepared` once per seed, yielding each outcome as it is stored.

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
) -> RunOutcome:
    """Run `prepared` once with `seed` and store it under `run_id` (default: a fresh uuid).

    Raises RunIdTaken, before any work, when a run with `run_id` is already stored: a retried
    item never writes a second copy of itself. Ctrl-C or SIGTERM: as `execute`.
    """
    from sqlalchemy.exc import IntegrityError

    run_id = run_id or uuid.uuid4().hex
    started_at = utcnow()
    with store.session() as session:
        machine = session.get(Machine, machine_id)
        assert machine is not None, "save_machine() first"
        session.add(
            Run(
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
            )
        )
        try:
            session.commit()
        except IntegrityError as exc:
            session.rollback()
            if session.get(Run, run_id) is not None:
                raise RunIdTaken(run_id) from exc
            raise

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

    with store.session() as session:
        recorder.flush_into(session)
        run = session.get(Run, run_id)
        assert run is not None
        run.status = status
        run.error = error
        run.gate_passed = gate_passed
        run.gate_reason = gate_reason
        run.finished_at = utcnow()
        run.wall_s = wall_s
        run.timed_s = recorder.clock.timed_s
        if recorder.notes or prepared.data_dir:
            extra = {"task_notes": _json_safe(recorder.notes)}
            if prepared.data_dir:
                extra["data_dir"] = str(prepared.data_dir)
            run.provenance = {**run.provenance, **extra}
        session.commit()
    if interrupt is not None:
        raise interrupt
    return RunOutcome(
        run_id=run_id,
        task=prepared.spec.task,
        method_name=prepared.method.name,
        profile=prepared.resolved.profile,
        seed=seed,
        status=status,
        error=error,
        gate_passed=gate_passed,
        gate_reason=gate_reason,
        wall_s=wall_s,
        scalars=recorder.scalars,
    )
