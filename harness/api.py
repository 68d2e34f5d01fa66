"""The Python API (`import budgetbench`): run tasks and read stored runs from a script.

The same library functions as the CLI, without its printing: `run` plans the sweep with
`executors.sweep.plan_sweep` and runs each item with `executors.run_item`, exactly as
`budgetbench run` does in this process; `show` and `export` are what `budgetbench show --json`
and `budgetbench export` call. Bad input raises `harness.errors.InputError` (the CLI's exit 2)
before any run starts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import InputError

if TYPE_CHECKING:
    from harness.store.records import RunRecord


@dataclass(frozen=True)
class Run:
    """One stored run as a script sees it: identity, outcome and scalar measurements."""

    id: str
    task: str
    method: str
    profile: str
    seed: int
    status: str
    """succeeded, failed, invalid, or running."""
    error: str | None
    gate_passed: bool | None
    wall_s: float | None
    started_at: datetime
    hardware_key: str
    measurements: dict[str, float]

    @classmethod
    def from_stored(cls, run: RunRecord) -> Run:
        return cls(
            id=run.id,
            task=run.task,
            method=run.method_name,
            profile=run.profile,
            seed=run.seed,
            status=run.status,
            error=run.error,
            gate_passed=run.gate_passed,
            wall_s=run.wall_s,
            started_at=run.started_at,
            hardware_key=run.hardware_key,
            measurements=run.scalar_values(),
        )


def run(
    task: str,
    *,
    method: str | None = None,
    profile: str = "smoke",
    settings: dict[str, Any] | None = None,
    hyperparameters: dict[str, Any] | None = None,
    seeds: int = 1,
    device: str = "auto",
    db: str | None = None,
    data_dir: str | Path | None = None,
    suite_version: str | None = None,
    resume: bool = False,
) -> list[Run]:
    """Run `task` with `method` (a reference name, a .py path or a module; default: the task's
    first reference method) for seeds 0..seeds-1 in this process, store every run in `db` (as
    `--db`; default: the CLI's default database) and return them as stored.

    `settings` are the task's settings (`--set key=value`), `hyperparameters` the method's
    (`--set hp.name=value`). A failed run is returned with status "failed" and its error.
    """
    from harness.executors import run_item
    from harness.executors.sweep import ExecutorOptions, plan_sweep, template
    from harness.run.machine import collect_fingerprint
    from harness.run.runner import save_machine
    from harness.store import open_store

    if seeds < 1:
        raise InputError("seeds must be at least 1")
    overrides = [*_as_overrides(settings, ""), *_as_overrides(hyperparameters, "hp.")]
    # Path("") is truthy, so an empty data_dir still means the current directory, as before.
    item = template(
        task, method, profile, overrides, suite_version,
        Path(data_dir) if data_dir is not None else None,
    )  # fmt: skip
    sweep = plan_sweep([item], seeds, device, ExecutorOptions(resume=resume))
    store = open_store(db)
    try:
        machine_id = save_machine(store, collect_fingerprint())
        run_ids = [
            run_item(store, item, prepared, machine_id, resume=resume).run_id
            for item, prepared in sweep.items
        ]
        return [_stored(store, run_id) for run_id in run_ids]
    finally:
        store.dispose()


def runs(
    *,
    task: str | None = None,
    method: str | None = None,
    profile: str | None = None,
    status: str | None = None,
    machine: str | None = None,
    since: datetime | None = None,
    limit: int | None = None,
    db: str | None = None,
) -> list[Run]:
    """Stored runs matching the filters (`machine`: a hardware-key prefix), newest first; an
    empty list when none match."""
    from harness.store import open_store
    from harness.store.queries import RunFilter, find_runs

    run_filter = RunFilter(
        task=task,
        method=method,
        profile=profile,
        status=status,
        hardware_key=machine,
        since=since,
        limit=limit,
    )
    store = open_store(db)
    try:
        with store.session() as session:
            return [Run.from_stored(r) for r in find_runs(session, run_filter)]
    finally:
        store.dispose()


def show(run_id: str, *, db: str | None = None) -> dict[str, Any]:
    """Everything stored about one run (an id or a prefix of at least 4 characters): provenance,
    settings, every measurement and curve point, and its machine, as `show --json` prints it."""
    from harness.store import open_store
    from harness.store.queries import get_run
    from harness.submit.bundles import machine_to_dict, run_to_dict

    store = open_store(db)
    try:
        with store.session() as session:
            stored = get_run(session, run_id)
            return {**run_to_dict(stored), "machine": machine_to_dict(stored.machine)}
    finally:
        store.dispose()


def export(
    output: str | Path,
    *,
    db: str | None = None,
    include_private: bool = False,
    on_left_out: Callable[[str], None] | None = None,
    **filters: Any,
) -> tuple[int, int]:
    """Write the finished runs matching `filters` (as `runs`) to a checksummed bundle at
    `output`, artifacts enclosed and, unless `include_private`, without personal data (host,
    user, pid, paths, command line); returns (runs, machines). Matching nothing raises InputError
    and writes nothing. `on_left_out` hears of each artifact that could not be enclosed."""
    from harness.store import open_store
    from harness.store.queries import RunFilter
    from harness.submit.bundles import build_bundle, publishable_bundle, write_bundle

    known = {"task", "method", "profile", "status", "machine", "since"}
    unknown = sorted(set(filters) - known)
    if unknown:
        raise InputError(f"export: unknown filter {unknown[0]!r} (filters: {', '.join(known)})")
    hardware_key = filters.pop("machine", None)
    store = open_store(db)
    try:
        bundle = build_bundle(store, RunFilter(hardware_key=hardware_key, **filters))
        if not bundle["runs"]:
            given = {**filters, "machine": hardware_key}
            matched = ", ".join(f"{k}={v}" for k, v in given.items() if v is not None)
            where = f"match {matched} " if matched else "stored "
            raise InputError(f"no finished runs {where}in {store.display_url}")
        bundle, left_out = publishable_bundle(bundle, include_private)
        for line in left_out:
            if on_left_out is not None:
                on_left_out(line)
        write_bundle(bundle, Path(output))
        return len(bundle["runs"]), len(bundle["machines"])
    finally:
        store.dispose()


def _stored(store: Any, run_id: str) -> Run:
    from harness.store.queries import get_run

    with store.session() as session:
        return Run.from_stored(get_run(session, run_id))


def _as_overrides(values: dict[str, Any] | None, prefix: str) -> list[str]:
    """`{"repeats": 3}` -> ["repeats=3"]: JSON scalars and lists read the same as TOML."""
    pairs = []
    for key, value in (values or {}).items():
        if isinstance(value, dict):
            raise InputError(f"setting {prefix}{key}: a table cannot be given here")
        pairs.append(f"{prefix}{key}={json.dumps(value)}")
    return pairs
