"""What the commands share: exit codes, click options, the run filters and their messages.

Only click is imported here (and `harness`'s own light modules inside functions), so every
command module can use these without slowing `budgetbench --help`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

EXIT_FAILED = 1
EXIT_INPUT = 2
EXIT_INTERRUPTED = 130

db_option = click.option(
    "--db",
    envvar="BUDGETBENCH_DB",
    metavar="URL|PATH",
    help="Database: a SQLite path or URL, or postgresql://... [env BUDGETBENCH_DB;"
    " default results/budgetbench.db in a checkout, else ~/.local/share/budgetbench/]",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
suite_option = click.option(
    "--suite", "suite_version", metavar="vN", help="Suite version (default: newest)."
)
device_option = click.option(
    "--device",
    default="auto",
    show_default=True,
    metavar="auto|cpu|cuda|cuda:N",
    help="Device to run on.",
)
data_dir_option = click.option(
    "--data-dir",
    envvar="BUDGETBENCH_DATA_DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="Local mirror of hub datasets for offline machines [env BUDGETBENCH_DATA_DIR].",
)
MAX_SEEDS = 1000
"""More seeds than this is a typo, not a study: every work item is planned before the first run."""
seeds_option = click.option(
    "--seeds",
    type=click.IntRange(min=1, max=MAX_SEEDS),
    default=1,
    show_default=True,
    help=f"Seeds 0..N-1, one run each (at most {MAX_SEEDS}).",
)


def include_private_option(function):
    return click.option(
        "--include-private",
        is_flag=True,
        help="Publish the host name, user, process id, command line and paths of each run"
        " (left out by default; the store keeps them).",
    )(function)


def output_option(help_text: str):
    return _path_option("-o", "--output", help_text, directory=False, required=True)


def results_option(help_text: str):
    return _path_option("--results", "results_dir", help_text, directory=True)


def _path_option(first: str, second: str, help_text: str, directory: bool, required=False):
    kind = click.Path(file_okay=not directory, dir_okay=directory, path_type=Path)
    return click.option(first, second, type=kind, required=required, help=help_text)


jobs_dir_option = click.option(
    "--jobs-dir",
    envvar="BUDGETBENCH_JOBS_DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="slurm: where submitit keeps job files and budgetbench its job list"
    " [env BUDGETBENCH_JOBS_DIR; default <cache dir>/jobs].",
)


def executor_options(function):
    """The flags that choose where runs execute (see harness/executors)."""
    for option in reversed(
        [
            click.option(
                "--executor",
                type=click.Choice(["local", "pool", "slurm"]),
                default="local",
                show_default=True,
                help="local: one run at a time in this process; pool: a worker process per"
                " device; slurm: one Slurm job per run (submitit).",
            ),
            click.option(
                "--devices",
                metavar="0,1,..|cpu,cpu",
                help="pool: one worker per entry; a GPU index pins CUDA_VISIBLE_DEVICES.",
            ),
            click.option(
                "--workers", type=click.IntRange(min=1), help="pool: N CPU workers (no --devices)."
            ),
            click.option(
                "--nproc-per-node",
                type=click.IntRange(min=1),
                default=1,
                show_default=True,
                help="Processes per run, launched by torchrun (data-parallel tasks only).",
            ),
            click.option(
                "--resume",
                is_flag=True,
                help="Skip runs that already succeeded with the same comparability key and seed.",
            ),
            click.option("--partition", help="slurm: the partition."),
            click.option(
                "--gpus-per-task", type=click.IntRange(min=0), help="slurm: GPUs for each run."
            ),
            click.option(
                "--time",
                "time_min",
                type=click.IntRange(min=1),
                default=60,
                show_default=True,
                help="slurm: time limit per run in minutes.",
            ),
            click.option(
                "--array-parallelism",
                type=click.IntRange(min=1),
                default=16,
                show_default=True,
                help="slurm: at most this many runs of the job array at once.",
            ),
            jobs_dir_option,
            click.option(
                "--wait", is_flag=True, help="slurm: wait for the jobs and print their outcomes."
            ),
            click.option(
                "--submitit-cluster",
                type=click.Choice(["slurm", "local", "debug"]),
                hidden=True,
                help="submitit's cluster (default: detect); `local` runs jobs here (tests).",
            ),
        ]
    ):
        function = option(function)
    return function


def executor_choice(executor_flags: dict[str, Any]):
    """The `executor_options` flags a command received, as `ExecutorOptions`."""
    from harness.executors.slurm import SlurmOptions
    from harness.executors.sweep import ExecutorOptions

    flags = dict(executor_flags)
    slurm = SlurmOptions(
        partition=flags.pop("partition"),
        gpus_per_task=flags.pop("gpus_per_task"),
        time_min=flags.pop("time_min"),
        array_parallelism=flags.pop("array_parallelism"),
        cluster=flags.pop("submitit_cluster"),
    )
    return ExecutorOptions(slurm=slurm, **flags)


def filter_options(function):
    for option in reversed(
        [
            click.option("--task", help="Only this task."),
            click.option("--method", help="Only this method name."),
            click.option("--profile", help="Only this profile."),
            click.option(
                "--status", type=click.Choice(["running", "succeeded", "failed", "invalid"])
            ),
            click.option(
                "--machine", "hardware_key", metavar="KEY", help="Only this hardware key (prefix)."
            ),
            click.option(
                "--since", type=click.DateTime(), help="Only runs started at or after (UTC)."
            ),
        ]
    ):
        function = option(function)
    return function


def run_filter(task, method, profile, status, hardware_key, since, limit=None):
    from harness.store.queries import RunFilter

    return RunFilter(
        task=task,
        method=method,
        profile=profile,
        status=status,
        hardware_key=hardware_key,
        since=as_utc(since),
        limit=limit,
    )


def describe_filter(**filters: Any) -> str:
    """`task=probe, since=...` for the filters given, as a phrase ending in a space."""
    given = ", ".join(f"{name}={value}" for name, value in filters.items() if value is not None)
    return f"match {given} " if given else ""


def nothing_matches(store, task, method, profile, status, hardware_key, since) -> None:
    """A listing that found nothing is an error (exit 2), never an empty all-clear."""
    from harness.errors import InputError

    matched = describe_filter(
        task=task,
        method=method,
        profile=profile,
        status=status,
        machine=hardware_key,
        since=since,
    )
    raise InputError(f"no runs {matched or 'stored '}in {store.display_url}")


def as_utc(moment):
    """--since is given in UTC without an offset (click.DateTime is naive)."""
    from datetime import timezone

    return moment.replace(tzinfo=timezone.utc) if moment else None


class Fraction(click.ParamType):
    """A relative amount: `5%` or `0.05`."""

    name = "fraction"

    def convert(self, value, param, ctx):
        if isinstance(value, float):
            return value
        text = str(value).strip()
        try:
            number = float(text[:-1]) / 100 if text.endswith("%") else float(text)
        except ValueError:
            self.fail(f"{value!r} is not a fraction such as 5% or 0.05", param, ctx)
        if not 0 <= number < 10:
            self.fail(f"{value!r} is out of range", param, ctx)
        return number
