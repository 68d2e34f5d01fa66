"""Reading runs back: the filters shared by `runs`, `export` and later the site builder."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from harness.errors import InputError
from harness.store.models import Run


@dataclass(frozen=True)
class RunFilter:
    task: str | None = None
    method: str | None = None
    profile: str | None = None
    status: str | None = None
    hardware_key: str | None = None
    since: datetime | None = None
    limit: int | None = None
    run_ids: tuple[str, ...] | None = None
    """Only these runs (a submission's)."""


def find_runs(session: Session, run_filter: RunFilter, *, with_children: bool = False) -> list[Run]:
    """Runs matching the filter, newest first (with measurements etc. when `with_children`)."""
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
    if with_children:
        query = query.options(
            selectinload(Run.measurements),
            selectinload(Run.curve_points),
            selectinload(Run.artifacts),
            selectinload(Run.machine),
        )
    return list(session.scalars(query))


GROUP_KEYS = {
    "task": Run.task,
    "method": Run.method_name,
    "profile": Run.profile,
    "machine": Run.hardware_key,
    "software": Run.software_key,
    "spec": Run.task_spec_hash,
}


def select_group(session: Session, spec: str) -> list[Run]:
    """Runs named by `spec`: a run id (prefix), or `key=value,...` over GROUP_KEYS (ids and keys
    match by prefix). Only succeeded runs form a group; a single run may have any status."""
    if "=" not in spec:
        return [get_run(session, spec)]
    query = (
        select(Run)
        .where(Run.status == "succeeded")
        .order_by(Run.started_at)
        .options(selectinload(Run.measurements))
    )
    for part in spec.split(","):
        key, _, value = part.partition("=")
        column = GROUP_KEYS.get(key.strip())
        if column is None or not value:
            known = ", ".join(GROUP_KEYS)
            raise InputError(f"group {spec!r}: use key=value pairs with keys {known}")
        prefix_match = key.strip() in ("machine", "software", "spec")
        query = query.where(column.startswith(value) if prefix_match else column == value)
    runs = list(session.scalars(query))
    if not runs:
        raise InputError(f"no succeeded runs match {spec!r}")
    return runs


def get_run(session: Session, run_id_prefix: str) -> Run:
    """The run whose id starts with `run_id_prefix` (at least 4 characters, unambiguous)."""
    if len(run_id_prefix) < 4:
        raise InputError("give at least 4 characters of the run id")
    query = (
        select(Run)
        .where(Run.id.startswith(run_id_prefix.lower()))
        .options(
            selectinload(Run.measurements),
            selectinload(Run.curve_points),
            selectinload(Run.artifacts),
            selectinload(Run.machine),
        )
        .limit(2)
    )
    matches = list(session.scalars(query))
    if not matches:
        raise InputError(f"no run with id {run_id_prefix!r}")
    if len(matches) > 1:
        raise InputError(f"run id {run_id_prefix!r} is ambiguous: give more characters")
    return matches[0]
