"""The slurm executor against real Slurm daemons (slurmctld, slurmd, munge) and PostgreSQL.

`.ci/slurm.sh` starts a one-node cluster on loopback and CI sets BUDGETBENCH_TEST_SLURM=1 (and
BUDGETBENCH_REQUIRE_SLURM=1, so a missing cluster fails CI instead of skipping). Elsewhere the
cluster tests skip; the test that `--executor slurm` without Slurm is an error runs everywhere.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass

import pytest
from conftest import FAST_PROBE, assert_one_line_error, cli_json, run_cli

from harness.store import Store, open_store
from harness.store.models import Run

# Seed 1 sleeps on its first attempt only (the job the test requeues), seed 2 always (the job it
# cancels); seed 0 finishes at once.
SLEEPERS = """
import json
import os
import time
import torch
import torch.nn.functional as F

HYPERPARAMETERS: dict = {}

def matmul(a, b, run):
    return a @ b

def attention(q, k, v, run):
    seed = torch.initial_seed()
    if seed == 2 or (seed == 1 and os.environ.get("SLURM_RESTART_COUNT", "0") == "0"):
        time.sleep(600)
    return F.scaled_dot_product_attention(q, k, v)

def copy(dst, src, run):
    dst.copy_(src)
"""


@pytest.fixture
def slurm_cluster() -> None:
    if os.environ.get("BUDGETBENCH_TEST_SLURM") != "1" or shutil.which("sbatch") is None:
        if os.environ.get("BUDGETBENCH_REQUIRE_SLURM") == "1":
            pytest.fail("BUDGETBENCH_REQUIRE_SLURM=1 but no Slurm cluster (see .ci/slurm.sh)")
        pytest.skip("no Slurm cluster (start one with .ci/slurm.sh, set BUDGETBENCH_TEST_SLURM=1)")


@dataclass(frozen=True)
class StoredRun:
    id: str
    status: str
    error: str | None
    slurm_job_id: str | None
    restarts: int | None


def stored_runs(store: Store) -> dict[int, list[StoredRun]]:
    """Every stored run by seed, oldest attempt first."""
    found: dict[int, list[StoredRun]] = {}
    with store.session() as session:
        for run in session.query(Run).order_by(Run.started_at).all():
            found.setdefault(run.seed, []).append(
                StoredRun(
                    run.id,
                    run.status,
                    run.error,
                    run.provenance.get("slurm_job_id"),
                    run.provenance.get("slurm_restart_count"),
                )
            )
    return found


def wait_until_sleeping(store: Store, seed: int, timeout_s: float = 240) -> None:
    """Until the run of `seed` is running and has reached its sleeping attention call."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with store.session() as session:
            run = session.query(Run).filter_by(seed=seed, status="running").one_or_none()
            if run is not None and len(run.measurements) == 2:
                return
        time.sleep(0.5)
    raise AssertionError(f"seed {seed} never reached its sleeping call")


def jobs_until_final(jobs_dir, timeout_s: float = 300) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        jobs = cli_json("jobs", "--jobs-dir", str(jobs_dir))
        if all(job["state"] in ("COMPLETED", "CANCELLED", "FAILED") for job in jobs):
            return jobs
        time.sleep(2)
    raise AssertionError(f"jobs still not final after {timeout_s} s: {jobs}")


def test_a_sweep_on_real_slurm_survives_a_requeue_and_a_cancel(
    slurm_cluster, postgres_url, tmp_path
):
    method = tmp_path / "sleepers.py"
    method.write_text(SLEEPERS)
    jobs_dir = tmp_path / "jobs"
    submitted = run_cli(
        "run", "probe", "--method", str(method), "--seeds", "3", *FAST_PROBE,
        "--executor", "slurm", "--time", "10", "--jobs-dir", str(jobs_dir), "--db", postgres_url,
        check=True,
    )  # fmt: skip
    assert "submitted 3 job(s)" in submitted.stderr
    listed = cli_json("jobs", "--jobs-dir", str(jobs_dir))
    job_of = {job["seed"]: job["job_id"] for job in listed}
    assert sorted(job_of) == [0, 1, 2]
    assert {job["state"] for job in listed} <= {"PENDING", "RUNNING", "COMPLETED"}
    store = open_store(postgres_url)

    wait_until_sleeping(store, 1)
    subprocess.run(["scontrol", "requeue", job_of[1]], check=True, timeout=60)
    wait_until_sleeping(store, 2)
    subprocess.run(["scancel", job_of[2]], check=True, timeout=60)

    jobs = {job["seed"]: job for job in jobs_until_final(jobs_dir)}
    assert [jobs[seed]["state"] for seed in range(3)] == ["COMPLETED", "COMPLETED", "CANCELLED"]
    runs = stored_runs(store)
    assert sorted(runs) == [0, 1, 2]
    # Every run carries the Slurm job that ran it; a requeued job's second attempt knows it.
    (first,) = runs[0]
    assert (first.status, first.slurm_job_id, first.restarts) == ("succeeded", job_of[0], 0)
    assert first.id == jobs[0]["outcome"]["run_id"]
    interrupted, rerun = runs[1]
    assert (interrupted.status, interrupted.slurm_job_id, interrupted.restarts) == (
        "failed",
        job_of[1],
        0,
    ), interrupted
    assert (rerun.status, rerun.slurm_job_id, rerun.restarts) == ("succeeded", job_of[1], 1)
    assert rerun.id == jobs[1]["outcome"]["run_id"] != interrupted.id
    (cancelled,) = runs[2]
    assert (cancelled.status, cancelled.slurm_job_id) == ("failed", job_of[2]), cancelled
    store.dispose()


def test_executor_slurm_without_slurm_is_a_one_line_error(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    result = run_cli(
        "run", "probe", "--executor", "slurm", "--jobs-dir", str(tmp_path / "jobs"),
        "--db", str(tmp_path / "store.db"), env={"PATH": str(empty)},
    )  # fmt: skip
    assert_one_line_error(result, 2, "sbatch is not on PATH")
    assert not (tmp_path / "jobs").exists() and not (tmp_path / "store.db").exists()


def test_wait_follows_real_jobs_to_the_end(slurm_cluster, postgres_url, tmp_path):
    jobs_dir = tmp_path / "jobs"
    result = run_cli(
        "run", "probe", "--seeds", "2", *FAST_PROBE, "--executor", "slurm", "--wait",
        "--jobs-dir", str(jobs_dir), "--db", postgres_url, "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    finished = json.loads(result.stdout)
    assert [job["state"] for job in finished] == ["COMPLETED", "COMPLETED"]
    runs = stored_runs(open_store(postgres_url))
    for job in finished:
        (stored,) = runs[job["seed"]]
        assert stored.id == job["outcome"]["run_id"] and stored.slurm_job_id == job["job_id"]
