"""One shape of a run: what the runner returns, what the store reads back and what a bundle
carries are the same `RunRecord` (issue 17)."""

from __future__ import annotations

from helpers import run_probe

from harness.store.queries import RunFilter, find_runs, get_run
from harness.store.records import RunRecord
from harness.submit.bundles import build_bundle, records_from_bundle


def test_the_runner_returns_the_run_as_the_store_reads_it_back(sqlite_url):
    store, (returned,) = run_probe(sqlite_url)
    with store.session() as session:
        stored = get_run(session, returned.id)
    assert returned == stored and returned.machine == stored.machine
    assert returned.status == "succeeded" and returned.wall_s is not None
    assert returned.scalar_values() == {name: v for name, (v, _unit) in stored.scalars.items()}
    assert set(returned.scalar_values()) >= {"matmul_fp32_tflops", "memory_bandwidth_gbps"}


def test_a_bundle_gives_back_the_stored_records_with_their_machines(sqlite_url):
    store, _ = run_probe(sqlite_url, seeds=(0, 1))
    with store.session() as session:
        stored = {run.id: run for run in find_runs(session, RunFilter())}
    from_bundle = records_from_bundle(build_bundle(store, RunFilter()))
    assert sorted(run.id for run in from_bundle) == sorted(stored)
    for run in from_bundle:
        assert run.to_dict() == stored[run.id].to_dict()
        assert run.machine is not None and run.machine.to_dict() == stored[run.id].machine.to_dict()
        assert RunRecord.from_dict(run.to_dict(), run.machine) == run


def test_the_outcome_json_names_the_stored_run_and_its_measurements(sqlite_url):
    _, (run,) = run_probe(sqlite_url)
    outcome = run.outcome_json()
    assert outcome["run_id"] == run.id and outcome["method"] == run.method_name
    assert outcome["measurements"] == run.scalar_values()
    assert outcome["status"] == "succeeded" and outcome["gate_passed"] is True
