"""Executors: a pool of worker processes, torchrun, Slurm through submitit, resume, heartbeats.

The pool and Slurm tests start real worker processes against a real store (SQLite, and
PostgreSQL when a server is given), so they prove what a user gets: every run stored exactly
once, a killed worker costing only its own run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import fast_probe_overrides

from harness.errors import InputError
from harness.executors import SKIPPED, WorkItem, run_item
from harness.executors.pool import Slot, run_pool
from harness.executors.sweep import ExecutorOptions, plan_sweep
from harness.run.liveness import reap_dead_runs, utcnow
from harness.run.machine import collect_fingerprint
from harness.run.runner import save_machine
from harness.store import Store, open_store
from harness.store.models import Run

DDP_TASK_DIR = Path(__file__).parent / "ddp_task"

# Seed 1's attention call sleeps: that worker is the one the test kills.
SLEEPY_METHOD = """
import time
import torch
import torch.nn.functional as F

HYPERPARAMETERS: dict = {}

def matmul(a, b, run):
    return a @ b

def attention(q, k, v, run):
    if torch.initial_seed() == 1:
        time.sleep(120)
    return F.scaled_dot_product_attention(q, k, v)

def copy(dst, src, run):
    dst.copy_(src)
"""


def probe_items(method: str | None, seeds: range, sweep_id: str = "sweep") -> list[WorkItem]:
    return [
        WorkItem("probe", method, "smoke", seed, tuple(fast_probe_overrides()), sweep_id=sweep_id)
        for seed in seeds
    ]


@dataclass(frozen=True)
class StoredRun:
    id: str
    status: str
    error: str | None
    measurements: frozenset[str]


def runs_by_seed(store: Store) -> dict[int, list[StoredRun]]:
    found: dict[int, list[StoredRun]] = {}
    with store.session() as session:
        for run in session.query(Run).all():
            names = frozenset(m.name for m in run.measurements)
            found.setdefault(run.seed, []).append(StoredRun(run.id, run.status, run.error, names))
    return found


def kill_when_sleeping(store: Store, seed: int, killed: list[int]) -> None:
    """SIGKILL the worker whose run of `seed` reached its sleeping attention call."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with store.session() as session:
            run = session.query(Run).filter_by(seed=seed, status="running").one_or_none()
            if run is not None and len(run.measurements) == 2:
                os.kill(run.provenance["pid"], signal.SIGKILL)
                killed.append(run.provenance["pid"])
                return
        time.sleep(0.2)


def test_pool_of_two_workers_loses_only_the_killed_workers_run(db_url, tmp_path):
    method = tmp_path / "sleepy.py"
    method.write_text(SLEEPY_METHOD)
    store = open_store(db_url)
    killed: list[int] = []
    killer = threading.Thread(target=kill_when_sleeping, args=(store, 1, killed))
    killer.start()
    outcomes = []
    slots = [Slot("cpu 0", "cpu", {"OMP_NUM_THREADS": "1"})] * 2
    run_pool(store, db_url, probe_items(str(method), range(3)), slots, outcomes.append)
    killer.join()
    assert killed, "seed 1 never reached its sleeping call"
    by_seed = {outcome.seed: outcome for outcome in outcomes}
    assert [by_seed[s].status for s in range(3)] == ["succeeded", "failed", "succeeded"]
    assert "died without finishing it" in by_seed[1].error
    runs = runs_by_seed(store)
    assert sorted(runs) == [0, 1, 2] and all(len(r) == 1 for r in runs.values())
    assert runs[0][0].status == runs[2][0].status == "succeeded"
    (killed_run,) = runs[1]
    assert killed_run.status == "failed" and killed_run.id == by_seed[1].run_id
    assert killed_run.measurements == {"matmul_fp32_tflops", "memory_bandwidth_gbps"}


def test_resume_skips_items_that_already_succeeded(sqlite_url):
    store = open_store(sqlite_url)
    machine_id = save_machine(store, collect_fingerprint())

    def sweep(sweep_id: str, seeds: range, resume: bool):
        return [
            run_item(store, item, item.prepare(), machine_id, resume=resume)
            for item in probe_items(None, seeds, sweep_id)
        ]

    first = sweep("first", range(2), resume=False)
    second = sweep("second", range(3), resume=True)
    assert [o.status for o in second] == [SKIPPED, SKIPPED, "succeeded"]
    assert [o.run_id for o in second[:2]] == [o.run_id for o in first]
    assert len(runs_by_seed(store)[0]) == 1
    again = sweep("third", range(1), resume=False)  # without --resume the run is repeated
    assert again[0].status == "succeeded" and len(runs_by_seed(store)[0]) == 2


def test_a_retried_item_never_stores_its_succeeded_run_twice(sqlite_url):
    store = open_store(sqlite_url)
    machine_id = save_machine(store, collect_fingerprint())
    (item,) = probe_items(None, range(1), "requeued-job")
    first = run_item(store, item, item.prepare(), machine_id)
    retry = run_item(store, item, item.prepare(), machine_id)
    assert first.status == "succeeded" and retry.status == SKIPPED
    assert retry.run_id == first.run_id == item.run_id(0)
    assert len(runs_by_seed(store)[0]) == 1


def test_workers_racing_over_the_same_items_store_each_run_exactly_once(db_url, tmp_path):
    """Three workers handed the same sweep at once (a duplicated or requeued job): every item
    runs once; the others see its run, succeeded or still in progress, and store nothing."""
    from concurrent.futures import ThreadPoolExecutor

    method = tmp_path / "slow.py"  # each run lasts a second, so the workers overlap
    method.write_text(SLEEPY_METHOD.replace("torch.initial_seed() == 1", "True").replace(
        "time.sleep(120)", "time.sleep(1)"))  # fmt: skip
    store = open_store(db_url)
    machine_id = save_machine(store, collect_fingerprint())
    items = probe_items(str(method), range(3), "raced")
    prepared = [item.prepare() for item in items]

    def worker(_: int):
        return [run_item(store, i, p, machine_id) for i, p in zip(items, prepared, strict=True)]

    with ThreadPoolExecutor(3) as pool:
        outcomes = [o for result in pool.map(worker, range(3)) for o in result]
    ran = [o for o in outcomes if o.status != SKIPPED]
    assert sorted(o.seed for o in ran) == [0, 1, 2]
    assert all(o.status == "succeeded" for o in ran)
    runs = runs_by_seed(store)
    assert {seed: [r.id for r in found] for seed, found in runs.items()} == {
        item.seed: [item.run_id(0)] for item in items
    }


def test_a_run_whose_heartbeat_stopped_is_reaped_on_any_host(sqlite_url):
    store, run_id = _stored_probe_run(sqlite_url)
    with store.session() as session:
        run = session.get(Run, run_id)
        run.status, run.finished_at = "running", None
        run.provenance = {**run.provenance, "hostname": "another-node", "pid": 1}
        run.heartbeat_at = utcnow() - timedelta(seconds=100)
        session.commit()
    assert reap_dead_runs(store, stale_after_s=300) == []  # silent 100 s: still alive
    assert reap_dead_runs(store, stale_after_s=60) == [run_id]
    with store.session() as session:
        run = session.get(Run, run_id)
        assert run.status == "failed" and "no heartbeat" in run.error


def test_a_running_run_refreshes_its_heartbeat(sqlite_url, tmp_path, monkeypatch):
    import harness.run.liveness

    monkeypatch.setattr(harness.run.liveness, "HEARTBEAT_INTERVAL_S", 0.1)
    method = tmp_path / "slow.py"
    method.write_text(SLEEPY_METHOD.replace("time.sleep(120)", "pass").replace(
        "return F.scaled", "time.sleep(0.5)\n    return F.scaled"))  # fmt: skip
    store, run_id = _stored_probe_run(sqlite_url, str(method))
    with store.session() as session:
        run = session.get(Run, run_id)
        assert run.heartbeat_at > run.started_at + timedelta(seconds=0.2)


def _stored_probe_run(db_url: str, method: str | None = None) -> tuple[Store, str]:
    store = open_store(db_url)
    machine_id = save_machine(store, collect_fingerprint())
    (item,) = probe_items(method, range(1))
    outcome = run_item(store, item, item.prepare(), machine_id)
    assert outcome.status == "succeeded", outcome.error
    return store, outcome.run_id


@pytest.fixture
def ddp_task(monkeypatch) -> dict[str, str]:
    """Register the test-only `ddp-check` task here and in worker processes."""
    monkeypatch.syspath_prepend(str(DDP_TASK_DIR))
    monkeypatch.setenv("BUDGETBENCH_SUITE_DIR", str(DDP_TASK_DIR / "suite"))
    paths = [str(DDP_TASK_DIR), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))
    return {"task": "ddp-check"}


def test_torchrun_runs_one_data_parallel_run_on_two_processes(ddp_task, sqlite_url, tmp_path):
    options = ExecutorOptions(nproc_per_node=2)
    template = WorkItem("ddp-check", None, "smoke", 0, device="cpu")
    sweep = plan_sweep([template], 1, "cpu", options)
    assert sweep.slots == [Slot("this machine", "cpu")]
    store = open_store(sqlite_url)
    outcomes = []
    run_pool(store, sqlite_url, [i for i, _ in sweep.items], sweep.slots, outcomes.append,
             nproc_per_node=2, log_dir=tmp_path)  # fmt: skip
    (outcome,) = outcomes
    assert outcome.status == "succeeded", outcome.error
    values = {name: value for name, (value, _unit) in outcome.scalars.items()}
    assert values == {"world_size": 2.0, "rank_sum": 3.0, "replicas_agree": 1.0}
    with store.session() as session:
        (run,) = session.query(Run).all()  # rank 1 stored nothing
        assert run.provenance["world_size"] == 2 and len(run.measurements) == 3


def test_nproc_per_node_needs_a_data_parallel_task():
    options = ExecutorOptions(nproc_per_node=2)
    (template,) = probe_items(None, range(1))
    with pytest.raises(InputError, match="does not support data parallelism"):
        plan_sweep([template], 1, "cpu", options)


@pytest.mark.parametrize(
    ("options", "device", "message"),
    [
        (ExecutorOptions(executor="pool"), "auto", "needs --devices"),
        (ExecutorOptions(executor="pool", workers=2), "cuda", "--device does not combine"),
        (ExecutorOptions(executor="pool", devices="0,x"), "auto", "neither a GPU index"),
        (ExecutorOptions(devices="cpu"), "auto", "choose the slots of --executor pool"),
    ],
)
def test_bad_executor_options_are_input_errors(options, device, message):
    with pytest.raises(InputError, match=message):
        plan_sweep(probe_items(None, range(1)), 1, device, options)


def test_slurm_jobs_through_submitits_local_executor_land_in_the_store(sqlite_url, tmp_path):
    import json

    from harness.executors.slurm import SlurmOptions, job_states, read_jobs, submit

    jobs_dir = tmp_path / "jobs"
    records, jobs = submit(
        probe_items(None, range(1)), sqlite_url, SlurmOptions(cluster="local"), jobs_dir
    )
    for job in jobs:
        job.wait()
    (state,) = job_states(read_jobs(jobs_dir))  # as `budgetbench jobs` finds them later
    assert state.record == records[0] and state.state == "FINISHED"
    assert state.outcome["status"] == "succeeded", state.outcome
    (stored,) = runs_by_seed(open_store(sqlite_url))[0]
    assert stored.status == "succeeded" and stored.id == state.outcome["run_id"]
    listed = subprocess.run(
        [sys.executable, "-c", "from harness.cli import main; main()", "jobs", "--json",
         "--jobs-dir", str(jobs_dir)],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    (job,) = json.loads(listed.stdout)
    assert job["state"] == "FINISHED" and job["outcome"]["run_id"] == stored.id


def test_sigterm_stops_the_pool_and_marks_its_running_runs_failed(sqlite_url, tmp_path):
    from harness.run.runner import Interrupted

    method = tmp_path / "sleepy.py"
    method.write_text(SLEEPY_METHOD.replace("torch.initial_seed() == 1", "True"))
    store = open_store(sqlite_url)
    sleeping: list[int] = []

    def terminate_when_sleeping() -> None:  # SIGTERM to the pool (this process), as the CLI gets
        deadline = time.monotonic() + 120
        while not sleeping and time.monotonic() < deadline:
            with store.session() as session:
                run = session.query(Run).filter_by(status="running").one_or_none()
                if run is not None and len(run.measurements) == 2:
                    sleeping.append(run.provenance["pid"])
            time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGTERM)

    def on_sigterm(signum, frame):
        raise Interrupted()

    previous = signal.signal(signal.SIGTERM, on_sigterm)  # the CLI's handler
    killer = threading.Thread(target=terminate_when_sleeping)
    try:
        killer.start()
        with pytest.raises(Interrupted):
            run_pool(store, sqlite_url, probe_items(str(method), range(2)),
                     [Slot("cpu 0", "cpu")], lambda outcome: None)  # fmt: skip
    finally:
        killer.join()
        signal.signal(signal.SIGTERM, previous)
    assert sleeping
    ((stored,),) = runs_by_seed(store).values()  # seed 1 never started
    assert (stored.status, stored.error) == ("failed", "interrupted (Interrupted)")
    with pytest.raises(ProcessLookupError):  # the worker is gone, not orphaned
        os.kill(sleeping[0], 0)


def test_pool_slots_pin_gpus_and_split_cpu_threads(monkeypatch):
    import torch

    from harness.executors.pool import pool_slots, worker_command

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cpu = pool_slots("cpu,cpu", None, 1)
    assert [s.device for s in cpu] == ["cpu", "cpu"]
    assert cpu[0].env["CUDA_VISIBLE_DEVICES"] == ""  # CPU workers never see a GPU
    assert int(cpu[0].env["OMP_NUM_THREADS"]) == max(1, (os.cpu_count() or 1) // 2)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # no GPU here: pretend 4
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    gpu = pool_slots("0,1,2,3", None, 2)
    assert [(s.device, s.env) for s in gpu] == [
        ("cuda", {"CUDA_VISIBLE_DEVICES": "0,1"}),
        ("cuda", {"CUDA_VISIBLE_DEVICES": "2,3"}),
    ]
    with pytest.raises(InputError, match="GPU 4 does not exist"):
        pool_slots("3,4", None, 1)
    (item,) = probe_items(None, range(1))
    command = worker_command(item, "cuda", Path("o.json"), resume=False, nproc_per_node=2)
    assert command[1:4] == ["-m", "torch.distributed.run", "--standalone"]
    assert command[command.index("--device") + 1] == "cuda"


def test_pool_without_slots_is_a_one_line_error():
    from conftest import assert_one_line_error, run_cli

    result = run_cli("run", "probe", "--executor", "pool", "--db", "unused.db")
    assert_one_line_error(result, 2, "--executor pool needs --devices")
