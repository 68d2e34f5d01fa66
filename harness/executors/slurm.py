"""The slurm executor: each work item is one job of a Slurm job array, submitted with submitit.

Every job runs its item as a one-slot pool on the node it lands on (so a worker that dies still
has its run marked failed there) and writes to the shared store named by `--db` (PostgreSQL for a
cluster: every node must reach it). The submitted jobs are listed, one JSON line each, in
`<jobs dir>/jobs.jsonl`; `budgetbench jobs` reads that file and asks Slurm for their state.

`--executor slurm` means a real Slurm: without `sbatch` on PATH it is a one-line error, never
submitit's quiet fallback to running the jobs here (`--submitit-cluster local` asks for that by
name). A job's state comes from the controller (`squeue`, which knows every job it still holds),
then from accounting (`sacct`, through submitit) for jobs the controller has forgotten, so a
cluster without an accounting database still reports states, and `--wait` ends when every job has.
Each run stores its Slurm job id (`slurm_job_id` in its provenance, see `harness.run.provenance`).

A requeued or resubmitted job reruns the same item with the same run ids (see
`executors.WorkItem.run_id`): a run that already succeeded is not stored twice.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from harness.errors import InputError
from harness.executors import WorkItem
from harness.paths import cache_dir
from harness.run.liveness import utcnow

JOBS_FILE = "jobs.jsonl"
FINAL_STATES = frozenset(
    {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL",
     "DEADLINE", "PREEMPTED", "SPECIAL_EXIT", "FINISHED", "INTERRUPTED", "ENDED"}
)  # fmt: skip
"""Job states after which nothing more happens (Slurm's, submitit's local ones, and ENDED)."""
ENDED = "ENDED"
"""A Slurm job neither the controller nor accounting knows any more: it is over, its outcome (if
any) says how."""


@dataclass(frozen=True)
class SlurmOptions:
    partition: str | None = None
    gpus_per_task: int | None = None
    time_min: int = 60
    array_parallelism: int = 16
    cluster: str | None = None
    """submitit's cluster: None or "slurm" is Slurm (sbatch must exist); "local" and "debug"
    run jobs as local processes, only when asked for by name (tests)."""


def require_cluster(options: SlurmOptions) -> SlurmOptions:
    """The options with the cluster made explicit; a one-line error when Slurm is asked for and
    this machine has no `sbatch` (submitit would run the jobs here, quietly)."""
    import importlib.util

    if importlib.util.find_spec("submitit") is None:
        raise InputError(
            "--executor slurm needs budgetbench[slurm]: pip install 'budgetbench[slurm]'"
        )
    if options.cluster not in (None, "slurm"):
        return options
    if shutil.which("sbatch") is None:
        raise InputError(
            "--executor slurm: Slurm's sbatch is not on PATH on this machine; submit from a"
            " Slurm login node, or use --executor local or pool"
        )
    return replace(options, cluster="slurm")


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

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


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

    options = require_cluster(options)
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
    return outcomes[0].outcome_json()


def read_jobs(jobs_dir: Path) -> list[JobRecord]:
    path = jobs_dir / JOBS_FILE
    if not path.is_file():
        return []
    return [JobRecord(**json.loads(line)) for line in path.read_text().splitlines() if line]


def job_states(records: list[JobRecord]) -> list[JobState]:
    """Each job's state (Slurm's controller first, then submitit), with its outcome once it has
    one."""
    import submitit

    classes = {"slurm": submitit.SlurmJob, "local": submitit.LocalJob, "debug": submitit.LocalJob}
    queued = _queue_states() if any(r.cluster == "slurm" for r in records) else None
    states = []
    for record in records:
        job = classes.get(record.cluster, submitit.LocalJob)(record.folder, record.job_id)
        outcome = None
        if job.paths.result_pickle.is_file():
            try:
                outcome = job.result()
            except Exception as exc:  # the job raised: its state says FAILED; keep the reason
                outcome = {"status": "failed", "error": str(exc).strip().splitlines()[-1]}
        if record.cluster != "slurm":
            state = "FINISHED" if outcome is not None else job.state
        elif queued is not None and record.job_id in queued:
            state = queued[record.job_id]
        else:  # gone from the controller: accounting, if the cluster keeps it
            state = job.state.split()[0]  # "CANCELLED by 0" -> "CANCELLED"
            if state == "UNKNOWN" and queued is not None:
                state = ENDED
        states.append(JobState(record, state, outcome))
    return states


def _queue_states() -> dict[str, str] | None:
    """Every job the Slurm controller holds (pending, running, recently ended) -> its state, one
    line per array task; None when squeue cannot answer."""
    try:
        listed = subprocess.run(
            ["squeue", "--noheader", "--array", "--states=all", "--format=%i|%T"],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    states = {}
    for line in listed.stdout.splitlines():
        job_id, _, state = line.strip().partition("|")
        if job_id:
            states[job_id] = state
    return states


def wait_for_jobs(
    records: list[JobRecord],
    report: Callable[[str], None],
    *,
    poll_s: float = 2.0,
    report_every_s: float = 15.0,
) -> list[JobState]:
    """Poll until every job has reached a final state; `report` gets a progress line (how many
    in each state, elapsed time) at most every `report_every_s`."""
    start = last_report = time.monotonic()
    while True:
        states = job_states(records)
        if all(state.final for state in states):
            return states
        now = time.monotonic()
        if now - last_report >= report_every_s:
            last_report = now
            counts = Counter(state.state for state in states)
            summary = ", ".join(f"{n} {name.lower()}" for name, n in sorted(counts.items()))
            report(f"waiting for {len(states)} job(s): {summary}; {now - start:.0f} s elapsed")
        time.sleep(poll_s)
