"""Liveness: how a `running` run proves it is alive, and how a dead one is found and reaped.

A run whose process died outright (SIGKILL, out of memory) cannot mark itself failed. Its run
stays `running` until `reap_dead_runs` finds it: on the run's own host by its pid (and the
process's start time, so a recycled pid is not mistaken for it), on any other host once its
heartbeat, refreshed every `HEARTBEAT_INTERVAL_S` while it runs, is `HEARTBEAT_STALE_S` old.
budgetbench reaps before it runs or lists runs.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from datetime import datetime, timezone

from harness.store import Store
from harness.store.queries import running_runs
from harness.store.records import RunRecord
from harness.store.runs import mark_failed, stamp_heartbeat

HEARTBEAT_INTERVAL_S = 30.0
HEARTBEAT_STALE_S = 300.0  # ten missed heartbeats: the process is gone (or its host is)


def utcnow() -> datetime:
    """Now, timezone-aware UTC (what the store keeps)."""
    return datetime.now(timezone.utc)


def reap_dead_runs(store: Store, stale_after_s: float = HEARTBEAT_STALE_S) -> list[str]:
    """Mark failed the `running` runs whose process is gone; returns the ids it marked.

    On this host a process is matched by pid and by having started before its run did, so a
    recycled pid is not mistaken for the original. A run of another host (a shared store) is
    judged by its heartbeat: silent for `stale_after_s`, its process or its machine is gone.
    Runs without a heartbeat (stored before schema 0003) on other hosts are left alone.
    """
    with store.session() as session:
        running = running_runs(session)
    reasons = {}
    for run in running:
        reason = why_dead(run, stale_after_s)
        if reason is not None:
            reasons[run.id] = reason
    return mark_failed(store, reasons) if reasons else []


def why_dead(run: RunRecord, stale_after_s: float = HEARTBEAT_STALE_S) -> str | None:
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
        while not self._stop.wait(self._interval_s):
            with contextlib.suppress(Exception):  # a missed beat is harmless; see the docstring
                stamp_heartbeat(self._store, self._run_id)


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
