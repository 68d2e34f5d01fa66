"""The slurm executor: each work item is one job of a Slurm job array, submitted with submitit.

Every job runs its item as a one-slot pool on the node it lands on (so a worker that dies still
has its run marked failed there) and writes to the shared store named by `--db` (PostgreSQL for a
cluster: every node must reach it). The submitted jobs are listed, one JSON line each, in
`<jobs dir>/jobs.jsonl`; `budgetbench jobs` reads that file and asks submitit for their state.

A requeued or resubmitted job reruns the same item with the same run ids (see
`executors.WorkItem.run_id`): a run that already succeeded is not stored twice.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.executors import WorkItem, outcome_to_json
from harness.paths import cache_dir
from harness.runner import utcnow

JOBS_FILE = "jobs.jsonl"


@dataclass(frozen=True)
class SlurmOptions:
    partition: str | None = None
    gpus_per_task: int | None = None
    time_min: int = 60
    array_parallelism: int = 16
    cluster: str | None = None
    """submitit's cluster: None detects Slurm; "local" runs jobs as local processes (tests)."""


@dataclass(frozen=True)
class JobRecord:
    """One submitted job, as `budgetbench jobs` finds it again."""

    job_id: str
    cluster: str
    folder: str
    task: str
    method: str | None
    profile: str
    seed: int
    sweep_id: str
    submitted_at: str


@dataclass(frozen=True)
class JobState:
    record: JobRecord
    state: str
    outcome: dict[str, Any] | None
    """The job's result (an outcome as JSON) once it has finished."""


def default_jobs_dir() -> Path:
    return cache_dir() / "jobs"


def submit(
    items: list[WorkItem],
    db_url: str,
    options: SlurmOptions,
    jobs_dir: Path,
    *,
    resume: bool = False,
    nproc_per_node: int = 1,
) -> tuple[list[JobRecord], list[Any]]:
    """Submit one job per item (a job array on Slurm); returns the records it appended to the
    job list and submitit's job handles (to wait on)."""
    import submitit

    folder = jobs_dir / "%j"
    executor = submitit.AutoExecutor(folder=folder, cluster=options.cluster)
    parameters: dict[str, Any] = {
        "name": "budgetbench",
        "timeout_min": options.time_min,
        "slurm_array_parallelism": options.array_parallelism,
    }
    if options.partition:
        parameters["slurm_partition"] = options.partition
    if options.gpus_per_task:
        parameters["slurm_gpus_per_task"] = options.gpus_per_task
    executor.update_parameters(**parameters)
    count = len(items)
    jobs = executor.map_array(
        run_job,
        [item.to_json() for item in items],
        [db_url] * count,
        [resume] * count,
        [nproc_per_node] * count,
    )
    now = utcnow().isoformat()
    records = [
        JobRecord(
            job_id=str(job.job_id),
            cluster=executor.cluster,
            folder=str(folder),
            task=item.task,
            method=item.method,
            profile=item.profile,
            seed=item.seed,
            sweep_id=item.sweep_id,
            submitted_at=now,
        )
        for job, item in zip(jobs, items, strict=True)
    ]
    jobs_dir.mkdir(parents=True, exist_ok=True)
    with (jobs_dir / JOBS_FILE).open("a") as handle:
        for record in records:
            handle.write(json.dumps(asdict(record)) + "\n")
    return records, jobs


def run_job(item_json: str, db_url: str, resume: bool, nproc_per_node: int) -> dict[str, Any]:
    """The function a job runs on its node: the item in a one-slot pool; returns its outcome."""
    from harness.executors.pool import Slot, run_pool
    from harness.store import open_store

    item = WorkItem.from_json(item_json)
    try:
        import submitit

        log_dir = Path(submitit.JobEnvironment().paths.folder)
    except RuntimeError:  # not inside a submitit job (called directly)
        log_dir = Path(tempfile.mkdtemp(prefix="budgetbench-job-"))
    store = open_store(db_url)
    outcomes = []
    try:
        run_pool(
            store,
            db_url,
            [item],
            [Slot("this node", item.device)],  # Slurm already set CUDA_VISIBLE_DEVICES
            outcomes.append,
            resume=resume,
            nproc_per_node=nproc_per_node,
            log_dir=log_dir,
        )
    finally:
        store.dispose()
    return json.loads(outcome_to_json(outcomes[0]))


def read_jobs(jobs_dir: Path) -> list[JobRecord]:
    path = jobs_dir / JOBS_FILE
    if not path.is_file():
        return []
    return [JobRecord(**json.loads(line)) for line in path.read_text().splitlines() if line]


def job_states(records: list[JobRecord]) -> list[JobState]:
    """Each job's state as submitit reports it, with its outcome once it has one."""
    import submitit

    classes = {"slurm": submitit.SlurmJob, "local": submitit.LocalJob, "debug": submitit.LocalJob}
    states = []
    for record in records:
        job = classes.get(record.cluster, submitit.LocalJob)(record.folder, record.job_id)
        outcome = None
        if job.paths.result_pickle.is_file():
            try:
                outcome = job.result()
            except Exception as exc:  # the job raised: its state says FAILED; keep the reason
                outcome = {"status": "failed", "error": str(exc).strip().splitlines()[-1]}
        state = "FINISHED" if outcome is not None and record.cluster != "slurm" else job.state
        states.append(JobState(record, state, outcome))
    return states
