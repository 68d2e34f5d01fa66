"""Executors: how a sweep's work items get run, in this process or in worker processes.

A sweep is a list of `WorkItem`s (`items`): (task, method, profile, seed, overrides) plus the
sweep they belong to. Every executor ends in `run_item` (`attempts`), in-process (`local`) or in a
worker process (`pool`, `slurm`, torchrun; see `worker`), and every worker writes its own run to
the shared store. Two rules make that safe under retries and interruptions:

- Idempotent run ids: an item's run id is derived from the sweep id, the item and an attempt
  number, and the store refuses a second run with the same id. A retried item (a Slurm requeue,
  a resubmitted job) that finds its run succeeded, or still running in a live process, stores
  nothing new; a failed or dead attempt is kept and the next attempt gets the next id. So an item
  runs at most once at a time and succeeds at most once per sweep.
- Resume: with `resume`, an item whose comparability key (task, task-spec hash, profile, method
  hash, seed, hardware key) already has a succeeded run in the store is skipped.

What an executor hands back for each item is its stored run, a `RunRecord` (status `skipped`
when the item was already done), through an `OutcomeCallback` as each one finishes.
"""

from __future__ import annotations

from collections.abc import Callable

from harness.executors.attempts import SKIPPED, already_done, latest_outcome, run_item
from harness.executors.items import MAX_ATTEMPTS, WorkItem
from harness.store.records import RunRecord

OutcomeCallback = Callable[[RunRecord], None]
"""Hears of each item's run as the item finishes."""

__all__ = [
    "MAX_ATTEMPTS",
    "SKIPPED",
    "OutcomeCallback",
    "WorkItem",
    "already_done",
    "latest_outcome",
    "run_item",
]
