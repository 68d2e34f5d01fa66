"""Running an item at most once: idempotent attempts, retries and resume.

An item's run id is derived from the item and an attempt number (`WorkItem.run_id`), and the
store refuses a second run with the same id. A retried item (a Slurm requeue, a resubmitted job)
that finds its run succeeded, or still running in a live process, stores nothing new; a failed or
dead attempt is kept and the next attempt gets the next id. With `resume`, an item whose
comparability key (task, task-spec hash, profile, method hash, seed, hardware key) already has a
succeeded run in the store is skipped.
"""

from __future__ import annotations

from harness.executors.items import MAX_ATTEMPTS, WorkItem
from harness.run.liveness import why_dead
from harness.run.recorder import Tracker
from harness.run.runner import PreparedRun, execute_run
from harness.store import Store
from harness.store.queries import (
    first_comparable_success,
    first_finished_of,
    get_machine,
    run_by_id,
    runs_by_id,
)
from harness.store.records import RunRecord
from harness.store.runs import RunIdTaken

SKIPPED = "skipped"
"""The status of an outcome whose item was already done: its run is the stored one."""


def skipped(run: RunRecord) -> RunRecord:
    """The stored run as the outcome of an item that did not run again."""
    return run.with_status(SKIPPED)


def run_item(
    store: Store,
    item: WorkItem,
    prepared: PreparedRun,
    machine_id: str,
    *,
    resume: bool = False,
    tracker: Tracker | None = None,
) -> RunRecord:
    """Run `item` once (unless resume or a retry finds it done) and return its run."""
    done = already_done(store, item, prepared, machine_id, resume=resume)
    if done is not None:
        return done
    for run_id in item.candidate_run_ids():
        while True:
            with store.session() as session:
                existing = run_by_id(session, run_id)
            if existing is not None:
                if existing.status in ("succeeded", "invalid") or (
                    existing.status == "running" and why_dead(existing) is None
                ):
                    return skipped(existing)
                break  # a failed or dead attempt: keep it, take the next id
            try:
                return execute_run(store, prepared, item.seed, machine_id, tracker, run_id=run_id)
            except RunIdTaken:  # another process took this id a moment ago: look at its run
                continue
    raise RuntimeError(f"item {item.task} seed {item.seed}: all {MAX_ATTEMPTS} attempts used")


def already_done(
    store: Store, item: WorkItem, prepared: PreparedRun, machine_id: str, *, resume: bool
) -> RunRecord | None:
    """The stored run that makes running `item` unnecessary (as `skipped`), or None to run it.

    Done means: a previous attempt of this very item succeeded (a retry), or, with `resume`, a
    succeeded run with the same comparability key and seed on this hardware exists.
    """
    with store.session() as session:
        previous = first_finished_of(session, item.candidate_run_ids())
        if previous is not None:
            return skipped(previous)
        if not resume:
            return None
        machine = get_machine(session, machine_id)
        assert machine is not None, "save_machine() first"
        done = first_comparable_success(
            session,
            task=prepared.spec.task,
            task_spec_hash=prepared.resolved.task_spec_hash,
            profile=prepared.resolved.profile,
            method_hash=prepared.method.method_hash,
            hardware_key=machine.hardware_key,
            seed=item.seed,
        )
    return skipped(done) if done is not None else None


def latest_outcome(store: Store, item: WorkItem) -> RunRecord | None:
    """The item's run with the highest attempt number, if any was stored."""
    ids = item.candidate_run_ids()
    with store.session() as session:
        runs = runs_by_id(session, ids)
    for run_id in reversed(ids):
        if run_id in runs:
            return runs[run_id]
    return None
