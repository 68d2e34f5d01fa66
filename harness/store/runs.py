"""Writing runs: every write of budgetbench, each one transaction that opens and commits itself.

The run lifecycle (`harness.run`) calls these in order: `save_machine`, `insert_running_run`,
`append_results` while the task runs, `stamp_heartbeat` from its heartbeat thread and
`finish_run` at the end (the last results and the status change commit together, so no reader
sees a succeeded run with missing measurements). `mark_failed` is how a dead run is reaped, and
`import_runs` how a bundle's runs arrive, all or nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from harness.errors import InputError
from harness.store.database import Store
from harness.store.limits import check_row
from harness.store.models import Artifact, CurvePoint, Machine, Measurement, Run
from harness.store.queries import run_record
from harness.store.records import (
    RUN_COLUMNS,
    ArtifactRecord,
    CurvePointRecord,
    MachineRecord,
    MeasurementRecord,
    RunRecord,
    RunResult,
    shallow_fields,
)


class RunIdTaken(Exception):
    """A run with the requested id is already stored (a retried work item; see executors)."""


class StoreRefused(InputError):
    """The database refused a write (a constraint, a value its backend cannot hold)."""


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def save_machine(store: Store, machine: MachineRecord) -> str:
    """Insert the machine if it is new and return its id (concurrent writers may race: both
    are fine, the row is the same)."""
    with store.session() as session:
        if session.get(Machine, machine.id) is not None:
            return machine.id
        session.add(_machine_row(machine))
        try:
            session.commit()
        except IntegrityError:  # another process inserted the same machine first
            session.rollback()
    return machine.id


def insert_running_run(store: Store, run: RunRecord) -> None:
    """Store `run` (status `running`, no results yet; its machine saved first).

    Raises RunIdTaken when a run with its id is already stored: a retried item never writes a
    second copy of itself.
    """
    with store.session() as session:
        session.add(_run_row(run))
        try:
            session.commit()
        except IntegrityError as exc:
            session.rollback()
            if session.get(Run, run.id) is not None:
                raise RunIdTaken(run.id) from exc
            raise


def append_results(store: Store, run_id: str, results: Sequence[RunResult]) -> None:
    """Add measurements, curve points and artifact metadata to a stored run."""
    with store.session() as session:
        session.add_all(_result_rows(run_id, results))
        session.commit()


def finish_run(
    store: Store,
    run_id: str,
    results: Sequence[RunResult],
    *,
    status: str,
    error: str | None,
    gate_passed: bool | None,
    gate_reason: str,
    wall_s: float,
    timed_s: float,
    provenance_extra: dict[str, Any] | None = None,
) -> None:
    """The run's last results and its final status in one transaction."""
    with store.session() as session:
        session.add_all(_result_rows(run_id, results))
        run = session.get(Run, run_id)
        assert run is not None
        run.status = status
        run.error = error
        run.gate_passed = gate_passed
        run.gate_reason = gate_reason
        run.finished_at = _utcnow()
        run.wall_s = wall_s
        run.timed_s = timed_s
        if provenance_extra:
            run.provenance = {**run.provenance, **provenance_extra}
        session.commit()


def stamp_heartbeat(store: Store, run_id: str) -> None:
    """Set a `running` run's `heartbeat_at` to now (a finished run is left alone)."""
    with store.session() as session:
        session.execute(
            update(Run)
            .where(Run.id == run_id, Run.status == "running")
            .values(heartbeat_at=_utcnow())
        )
        session.commit()


def mark_failed(store: Store, reasons: dict[str, str]) -> list[str]:
    """Mark failed each run in `reasons` (id -> error) that is still `running`; returns the ids
    it marked (a run that finished meanwhile keeps its own status)."""
    marked = []
    now = _utcnow()
    with store.session() as session:
        for run_id, reason in reasons.items():
            result = session.execute(
                update(Run)
                .where(Run.id == run_id, Run.status == "running")
                .values(status="failed", error=reason, finished_at=now)
            )
            if result.rowcount:
                marked.append(run_id)
        session.commit()
    return marked


def import_runs(
    store: Store, batches: Iterable[tuple[str, list[MachineRecord], list[RunRecord]]]
) -> tuple[int, int, int]:
    """Add the machines and runs of every batch that are not stored yet, all in one transaction;
    returns (runs added, runs already present, machines added). A batch is (where it came from,
    its machines, its runs).

    A run stored with different content (or still running) is a conflict: InputError naming the
    batch, nothing imported. A value the store's limits (`limits`) refuse is an InputError naming
    the batch, one the database refuses a StoreRefused; nothing is imported either way.
    """
    added = present = machines_added = 0
    with store.session() as session:
        try:
            for where, machines, runs in batches:
                for machine in machines:
                    if session.get(Machine, machine.id) is None:
                        row = _machine_row(machine)
                        _check(where, [row])
                        session.add(row)
                        machines_added += 1
                session.flush()
                for run in runs:
                    existing = session.get(Run, run.id)
                    if existing is not None:
                        stored = run_record(existing)
                        if stored.status == "running" or stored.to_dict() != run.to_dict():
                            session.rollback()
                            raise InputError(
                                f"{where}: run {run.id} already exists with different content;"
                                " nothing was imported"
                            )
                        present += 1
                        continue
                    row = _run_row(run)
                    _check(where, [row, *row.measurements, *row.curve_points, *row.artifacts])
                    session.add(row)
                    added += 1
                session.flush()
            session.commit()
        except SQLAlchemyError as exc:
            session.rollback()
            first_line = str(exc.orig if getattr(exc, "orig", None) else exc).splitlines()[0]
            raise StoreRefused(f"the store refused it: {first_line}") from exc
    return added, present, machines_added


def _check(where: str, rows: list[Any]) -> None:
    """The store's limits, named by `where`, before anything is added."""
    for row in rows:
        try:
            check_row(row)
        except InputError as exc:
            raise InputError(f"{where}: {exc}; nothing was imported") from None


def _machine_row(machine: MachineRecord) -> Machine:
    return Machine(**shallow_fields(machine))


def _run_row(run: RunRecord) -> Run:
    row = Run(**{name: getattr(run, name) for name in RUN_COLUMNS})
    row.measurements = [Measurement(run_id=run.id, **m.to_dict()) for m in run.measurements]
    row.curve_points = [CurvePoint(run_id=run.id, **p.to_dict()) for p in run.curve_points]
    row.artifacts = [Artifact(run_id=run.id, **a.to_dict()) for a in run.artifacts]
    return row


_ROW_TYPES = {
    MeasurementRecord: Measurement,
    CurvePointRecord: CurvePoint,
    ArtifactRecord: Artifact,
}


def _result_rows(run_id: str, results: Sequence[RunResult]) -> list[Any]:
    return [_ROW_TYPES[type(result)](run_id=run_id, **result.to_dict()) for result in results]
