"""Work items and how one is run, whichever executor runs it.

A sweep is a list of `WorkItem`s: (task, method, profile, seed, overrides) plus the sweep they
belong to. Every executor ends in `run_item`, in-process (`local`) or in a worker process
(`pool`, `slurm`, torchrun; see `harness.executors.worker`), and every worker writes its own run to
the
shared store. Two rules make that safe under retries and interruptions:

- Idempotent run ids: an item's run id is derived from the sweep id, the item and an attempt
  number, and the store refuses a second run with the same id. A retried item (a Slurm requeue,
  a resubmitted job) that finds its run succeeded, or still running in a live process, stores
  nothing new; a failed or dead attempt is kept and the next attempt gets the next id. So an item
  runs at most once at a time and succeeds at most once per sweep.
- Resume: with `resume`, an item whose comparability key (task, task-spec hash, profile, method
  hash, seed, hardware key) already has a succeeded run in the store is skipped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from harness.run.runner import (
    PreparedRun,
    RunIdTaken,
    RunOutcome,
    Tracker,
    execute_run,
    prepare,
    why_dead,
)
from harness.spec import canonical_json, sha256_hex
from harness.store import Store
from harness.store.models import Run

MAX_ATTEMPTS = 64
SKIPPED = "skipped"
"""The status of an outcome whose item was already done: its run is the stored one."""


@dataclass(frozen=True)
class WorkItem:
    """One run to do, in a form any process can rebuild it from (JSON)."""

    task: str
    method: str | None
    profile: str
    seed: int
    overrides: tuple[str, ...] = ()
    suite_version: str | None = None
    data_dir: str | None = None
    device: str = "auto"
    sweep_id: str = ""

    def to_json(self) -> str:
        return canonical_json(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> WorkItem:
        data = json.loads(text)
        return cls(**{**data, "overrides": tuple(data.get("overrides", ()))})

    def run_id(self, attempt: int) -> str:
        """The id this item's run gets on `attempt` (0, 1, ...): the same in every process."""
        identity = {**asdict(self), "device": None, "attempt": attempt}
        return sha256_hex(canonical_json(identity))[:32]

    def candidate_run_ids(self) -> list[str]:
        return [self.run_id(attempt) for attempt in range(MAX_ATTEMPTS)]

    def on_device(self, device: str) -> WorkItem:
        return replace(self, device=device)

    def prepare(self) -> PreparedRun:
        return prepare(
            self.task,
            self.method,
            self.profile,
            self.device,
            self.overrides,
            self.suite_version,
            None if self.data_dir is None else Path(self.data_dir),
        )


def run_item(
    store: Store,
    item: WorkItem,
    prepared: PreparedRun,
    machine_id: str,
    *,
    resume: bool = False,
    tracker: Tracker | None = None,
) -> RunOutcome:
    """Run `item` once (unless resume or a retry finds it done) and return its outcome."""
    done = already_done(store, item, prepared, machine_id, resume=resume)
    if done is not None:
        return done
    for run_id in item.candidate_run_ids():
        while True:
            with store.session() as session:
                existing = session.get(Run, run_id)
                if existing is not None:
                    if existing.status in ("succeeded", "invalid") or (
                        existing.status == "running" and why_dead(existing) is None
                    ):
                        return stored_outcome(existing, status=SKIPPED)
                    break  # a failed or dead attempt: keep it, take the next id
            try:
                return execute_run(store, prepared, item.seed, machine_id, tracker, run_id=run_id)
            except RunIdTaken:  # another process took this id a moment ago: look at its run
                continue
    raise RuntimeError(f"item {item.task} seed {item.seed}: all {MAX_ATTEMPTS} attempts used")


def already_done(
    store: Store, item: WorkItem, prepared: PreparedRun, machine_id: str, *, resume: bool
) -> RunOutcome | None:
    """The stored outcome that makes running `item` unnecessary, or None to run it.

    Done means: a previous attempt of this very item succeeded (a retry), or, with `resume`, a
    succeeded run with the same comparability key and seed on this hardware exists.
    """
    from sqlalchemy import select

    from harness.store.models import Machine

    with store.session() as session:
        ids = item.candidate_run_ids()
        query = select(Run).where(Run.id.in_(ids), Run.status.in_(("succeeded", "invalid")))
        previous = session.scalars(query).first()
        if previous is not None:
            return stored_outcome(previous, status=SKIPPED)
        if resume:
            machine = session.get(Machine, machine_id)
            assert machine is not None, "save_machine() first"
            done = find_succeeded(session, prepared, item.seed, machine.hardware_key)
            if done is not None:
                return stored_outcome(done, status=SKIPPED)
    return None


def find_succeeded(session, prepared: PreparedRun, seed: int, hardware_key: str) -> Run | None:
    """A succeeded run with the same comparability key and seed, if the store holds one."""
    from sqlalchemy import select

    query = (
        select(Run)
        .where(
            Run.task == prepared.spec.task,
            Run.task_spec_hash == prepared.resolved.task_spec_hash,
            Run.profile == prepared.resolved.profile,
            Run.method_hash == prepared.method.method_hash,
            Run.hardware_key == hardware_key,
            Run.seed == seed,
            Run.status == "succeeded",
        )
        .order_by(Run.started_at)
        .limit(1)
    )
    return session.scalars(query).first()


def latest_outcome(store: Store, item: WorkItem) -> RunOutcome | None:
    """The outcome of the item's run with the highest attempt number, if any was stored."""
    from sqlalchemy import select

    ids = item.candidate_run_ids()
    with store.session() as session:
        runs = {run.id: run for run in session.scalars(select(Run).where(Run.id.in_(ids)))}
        for run_id in reversed(ids):
            if run_id in runs:
                return stored_outcome(runs[run_id])
    return None


def stored_outcome(run: Run, status: str | None = None) -> RunOutcome:
    """A stored run as an outcome (its measurements as scalars)."""
    return RunOutcome(
        run_id=run.id,
        task=run.task,
        method_name=run.method_name,
        profile=run.profile,
        seed=run.seed,
        status=status or run.status,
        error=run.error,
        gate_passed=run.gate_passed,
        gate_reason=run.gate_reason,
        wall_s=run.wall_s or 0.0,
        scalars={m.name: (m.value, m.unit) for m in run.measurements},
    )


def outcome_to_json(outcome: RunOutcome) -> str:
    return json.dumps(asdict(outcome))


def outcome_from_json(text: str) -> RunOutcome:
    data: dict[str, Any] = json.loads(text)
    data["scalars"] = {name: (value, unit) for name, (value, unit) in data["scalars"].items()}
    return RunOutcome(**data)


OutcomeCallback = Callable[[RunOutcome], None]
