"""In-process helpers that drive the real runner against a real store."""

from __future__ import annotations

from conftest import fast_probe_overrides

from harness.run.machine import collect_fingerprint
from harness.run.runner import execute, prepare, save_machine
from harness.store import Store, open_store
from harness.store.records import RunRecord


def run_probe(
    db_url: str,
    method: str | None = None,
    seeds: tuple[int, ...] = (0,),
    extra: tuple[str, ...] = (),
) -> tuple[Store, list[RunRecord]]:
    store = open_store(db_url)
    prepared = prepare("probe", method, "smoke", "cpu", [*fast_probe_overrides(), *extra])
    machine_id = save_machine(store, collect_fingerprint())
    return store, list(execute(store, prepared, seeds, machine_id))
