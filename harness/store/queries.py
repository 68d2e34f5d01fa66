"""Reading runs back: every read query of budgetbench, each returning records, never rows.

A reader takes an open session (`with store.session() as session:`), so the reads of one
command share one transaction and see one state of the store; `harness.store.runs` holds the
writes, which open their own. Runs come back as `RunRecord`s with their measurements, curve
points, artifacts and machine loaded (the relations are read in bulk, one query each).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from harness.errors import InputError
from harness.store.models import Machine, Measurement, Run
from harness.store.records import (
    RUN_COLUMNS,
    ArtifactRecord,
    CurvePointRecord,
    MachineRecord,
    MeasurementRecord,
    RunRecord,
)

StoreSession = Session
"""The type of `store.session()`, for readers' annotations outside the store."""

_CHILDREN = (
    selectinload(Run.measurements),
    selectinload(Run.curve_points),
    selectinload(Run.artifacts),
    selectinload(Run.machine),
)


def _copy(record_type: type, row: Any, **converted: Any) -> Any:
    """A record of `record_type` from a row with the same field names (`converted` given)."""
    names = [f.name for f in fields(record_type) if f.name not in converted]
    return record_type(**{name: getattr(row, name) for name in names}, **converted)


def machine_record(row: Machine) -> MachineRecord:
    """The record of a machine row."""
    return _copy(MachineRecord, row)


def run_record(row: Run) -> RunRecord:
    """The record of a run row and its children (read inside the row's session)."""
    return RunRecord(
        **{name: getattr(row, name) for name in RUN_COLUMNS},
        measurements=tuple(
            _copy(MeasurementRecord, m, samples=tuple(m.samples) if m.samples is not None else None)
            for m in row.measurements
        ),
        curve_points=tuple(_copy(CurvePointRecord, p) for p in row.curve_points),
        artifacts=tuple(_copy(ArtifactRecord, a) for a in row.artifacts),
        machine=machine_record(row.machine) if row.machine is not None else None,
    )


def _records(session: Session, query: Any) -> list[RunRecord]:
    return [run_record(row) for row in session.scalars(query.options(*_CHILDREN))]


@dataclass(frozen=True)
class RunFilter:
    """Which runs `find_runs` returns; a field left None does not filter."""

    task: str | None = None
    method: str | None = None
    profile: str | None = None
    status: str | None = None
    hardware_key: str | None = None
    since: datetime | None = None
    limit: int | None = None
    run_ids: tuple[str, ...] | None = None
    """Only these runs (a submission's)."""


def find_runs(session: Session, run_filter: RunFilter) -> list[RunRecord]:
    """Runs matching the filter, newest first."""
    query = select(Run).order_by(Run.started_at.desc(), Run.id)
    if run_filter.task:
        query = query.where(Run.task == run_filter.task)
    if run_filter.method:
        query = query.where(Run.method_name == run_filter.method)
    if run_filter.profile:
        query = query.where(Run.profile == run_filter.profile)
    if run_filter.status:
        query = query.where(Run.status == run_filter.status)
    if run_filter.hardware_key:
        query = query.where(Run.hardware_key.startswith(run_filter.hardware_key))
    if run_filter.since:
        query = query.where(Run.started_at >= run_filter.since)
    if run_filter.run_ids is not None:
        query = query.where(Run.id.in_(run_filter.run_ids))
    if run_filter.limit:
        query = query.limit(run_filter.limit)
    return _records(session, query)


GROUP_KEYS = {
    "task": Run.task,
    "method": Run.method_name,
    "profile": Run.profile,
    "machine": Run.hardware_key,
    "software": Run.software_key,
    "spec": Run.task_spec_hash,
}


def select_group(session: Session, spec: str) -> list[RunRecord]:
    """Runs named by `spec`: a run id (prefix), or `key=value,...` over GROUP_KEYS (ids and keys
    match by prefix). Only succeeded runs form a group; a single run may have any status."""
    if "=" not in spec:
        return [get_run(session, spec)]
    query = select(Run).where(Run.status == "succeeded").order_by(Run.started_at)
    for part in spec.split(","):
        key, _, value = part.partition("=")
        column = GROUP_KEYS.get(key.strip())
        if column is None or not value:
            known = ", ".join(GROUP_KEYS)
            raise InputError(f"group {spec!r}: use key=value pairs with keys {known}")
        prefix_match = key.strip() in ("machine", "software", "spec")
        query = query.where(column.startswith(value) if prefix_match else column == value)
    runs = _records(session, query)
    if not runs:
        raise InputError(f"no succeeded runs match {spec!r}")
    return runs


def get_run(session: Session, run_id_prefix: str) -> RunRecord:
    """The run whose id starts with `run_id_prefix` (at least 4 characters, unambiguous)."""
    if len(run_id_prefix) < 4:
        raise InputError("give at least 4 characters of the run id")
    matches = _records(
        session, select(Run).where(Run.id.startswith(run_id_prefix.lower())).limit(2)
    )
    if not matches:
        raise InputError(f"no run with id {run_id_prefix!r}")
    if len(matches) > 1:
        raise InputError(f"run id {run_id_prefix!r} is ambiguous: give more characters")
    return matches[0]


def run_by_id(session: Session, run_id: str) -> RunRecord | None:
    """The run with exactly this id, or None."""
    return next(iter(_records(session, select(Run).where(Run.id == run_id))), None)


def runs_by_id(session: Session, run_ids: Iterable[str]) -> dict[str, RunRecord]:
    """The stored runs among `run_ids`, by id (absent ids are left out)."""
    return {r.id: r for r in _records(session, select(Run).where(Run.id.in_(list(run_ids))))}


def first_finished_of(session: Session, run_ids: Iterable[str]) -> RunRecord | None:
    """One run among `run_ids` that succeeded or was judged invalid: the item is done."""
    query = select(Run).where(Run.id.in_(list(run_ids)), Run.status.in_(("succeeded", "invalid")))
    return next(iter(_records(session, query.limit(1))), None)


def first_comparable_success(
    session: Session,
    *,
    task: str,
    task_spec_hash: str,
    profile: str,
    method_hash: str,
    hardware_key: str,
    seed: int,
) -> RunRecord | None:
    """The oldest succeeded run with this comparability key and seed, if the store holds one."""
    query = (
        select(Run)
        .where(
            Run.task == task,
            Run.task_spec_hash == task_spec_hash,
            Run.profile == profile,
            Run.method_hash == method_hash,
            Run.hardware_key == hardware_key,
            Run.seed == seed,
            Run.status == "succeeded",
        )
        .order_by(Run.started_at)
        .limit(1)
    )
    return next(iter(_records(session, query)), None)


def running_runs(session: Session) -> list[RunRecord]:
    """Every run stored as `running` (alive or not: see `harness.run.liveness`)."""
    return _records(session, select(Run).where(Run.status == "running"))


def finished_runs(session: Session) -> list[RunRecord]:
    """Every run that is not `running`, oldest first: what boards and the site show."""
    query = select(Run).where(Run.status != "running").order_by(Run.started_at, Run.id)
    return _records(session, query)


def get_machine(session: Session, machine_id: str) -> MachineRecord | None:
    """The machine with this id, or None."""
    row = session.get(Machine, machine_id)
    return machine_record(row) if row is not None else None


def all_machines(session: Session) -> list[MachineRecord]:
    """Every machine, in the order first seen."""
    rows = session.scalars(select(Machine).order_by(Machine.first_seen_at))
    return [machine_record(row) for row in rows]


def machine_software(session: Session, machine_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The `software` part of each named machine's fingerprint, by machine id."""
    ids = sorted(set(machine_ids))
    if not ids:
        return {}
    rows = session.execute(select(Machine.id, Machine.fingerprint).where(Machine.id.in_(ids)))
    return {row.id: (row.fingerprint or {}).get("software", {}) for row in rows}


@dataclass(frozen=True)
class MeasuredValue:
    """One scalar measurement of a succeeded run with the keys that place it in a series."""

    run_id: str
    started_at: datetime
    task: str
    task_spec_hash: str
    profile: str
    method_name: str
    method_hash: str
    hardware_key: str
    software_key: str
    machine_id: str
    name: str
    value: float
    unit: str
    higher_is_better: bool


def measured_values(
    session: Session, *, hardware_key: str | None = None, since: datetime | None = None
) -> list[MeasuredValue]:
    """Every scalar measurement of succeeded runs, oldest run first (one joined query: the
    regression finder reads tens of thousands of these).

    `hardware_key` is a prefix; `since` keeps runs started at or after it.
    """
    query = (
        select(
            Run.id,
            Run.started_at,
            Run.task,
            Run.task_spec_hash,
            Run.profile,
            Run.method_name,
            Run.method_hash,
            Run.hardware_key,
            Run.software_key,
            Run.machine_id,
            Measurement.name,
            Measurement.value,
            Measurement.unit,
            Measurement.higher_is_better,
        )
        .join(Measurement, Measurement.run_id == Run.id)
        .where(Run.status == "succeeded")
        .order_by(Run.started_at, Run.id)
    )
    if hardware_key:
        query = query.where(Run.hardware_key.startswith(hardware_key))
    if since is not None:
        query = query.where(Run.started_at >= since)
    return [MeasuredValue(*row) for row in session.execute(query)]
