"""`run`, `suite run` and `jobs`: plan a sweep, run it here, in a pool or on Slurm
(`harness.executors.sweep`), and print the outcomes.

Exit 1 when any run failed; everything is validated before the first run starts, so bad input
exits 2 having run nothing.
"""

from __future__ import annotations

import signal
import sys
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from harness.cli.options import (
    EXIT_FAILED,
    data_dir_option,
    db_option,
    device_option,
    executor_choice,
    executor_options,
    jobs_dir_option,
    json_option,
    seeds_option,
    suite_option,
)
from harness.cli.output import (
    note,
    print_job_states,
    print_json,
    print_outcomes_json,
    report_reaped,
)

if TYPE_CHECKING:  # the sweep and the runner import SQLAlchemy: not at `budgetbench --help`
    from harness.cli.capture import Captured
    from harness.executors import WorkItem
    from harness.executors.sweep import ExecutorOptions, Sweep
    from harness.run.recorder import Tracker
    from harness.store import Store
    from harness.store.records import RunRecord


class ConsoleView:
    """The CLI's `harness.executors.sweep.SweepView`: progress and one line per outcome on
    stderr (`harness.cli.report`), third-party output in the run's log (`harness.cli.capture`)."""

    def progress(self) -> AbstractContextManager[Tracker | None]:
        from harness.cli.report import progress_tracker

        return progress_tracker()

    def starting(self, item: WorkItem) -> None:
        from harness.cli.report import now_running

        now_running(f"{item.task} / {item.method} / {item.profile} / seed {item.seed}")

    def finished(self, outcome: RunRecord) -> None:
        from harness.cli.report import print_outcome_line

        print_outcome_line(outcome)

    def note(self, line: str) -> None:
        note(line)

    def capture(self, log_file: Path) -> AbstractContextManager[Captured]:
        from harness.cli.capture import third_party_output_to

        return third_party_output_to(log_file)


def install_sigterm_handler() -> None:
    from harness.run.runner import Interrupted

    def handler(signum, frame):
        raise Interrupted()

    signal.signal(signal.SIGTERM, handler)


def run_sweep_here(
    db: str | None, sweep: Sweep, options: ExecutorOptions
) -> tuple[Store, list[RunRecord]]:
    """Run a planned sweep here or in a pool, each outcome printed as it finishes; returns the
    store and the outcomes in the order they finished."""
    from harness.executors.sweep import run_sweep
    from harness.run.liveness import reap_dead_runs
    from harness.store import open_store
    from harness.store.database import resolve_db_url

    store = open_store(db)
    report_reaped(reap_dead_runs(store))
    install_sigterm_handler()
    return store, run_sweep(store, resolve_db_url(db), sweep, options, ConsoleView())


def run_templates(
    db: str | None,
    templates: list[WorkItem],
    seeds: int,
    device: str,
    as_json: bool,
    options: ExecutorOptions,
) -> None:
    """Run every template for every seed with the chosen executor; print outcomes; exit 1 if
    any run failed (everything is validated before the first run starts)."""
    from harness.cli.report import now_running, print_outcomes, progress_tracker
    from harness.executors import SKIPPED
    from harness.executors.sweep import plan_sweep

    with progress_tracker():  # checking every task and method takes a while: say so in a log
        now_running(f"checking {len(templates)} task/method pair(s) before the first run")
        sweep = plan_sweep(templates, seeds, device, options)
    if options.executor == "slurm":
        _submit_to_slurm(db, sweep, options, as_json)
        return
    store, outcomes = run_sweep_here(db, sweep, options)
    if as_json:
        print_outcomes_json(outcomes)
    else:
        print_outcomes(outcomes)
        click.echo(f"stored in {store.display_url}", err=True)
    if any(o.status not in ("succeeded", SKIPPED) for o in outcomes):
        sys.exit(EXIT_FAILED)


def _submit_to_slurm(db: str | None, sweep: Sweep, options: ExecutorOptions, as_json: bool) -> None:
    """Submit the sweep as Slurm jobs; with --wait, wait and report like a local sweep."""
    from harness.executors.slurm import wait_for_jobs
    from harness.executors.sweep import submit_sweep
    from harness.store.database import resolve_db_url

    records = submit_sweep(resolve_db_url(db), sweep, options, note)
    ids = ", ".join(record.job_id for record in records)
    click.echo(f"submitted {len(records)} job(s): {ids} (see `budgetbench jobs`)", err=True)
    if not options.wait:
        if as_json:
            print_json([record.__dict__ for record in records])
        return
    states = wait_for_jobs(records, note)
    print_job_states(states, as_json)
    if any((state.outcome or {}).get("status") not in ("succeeded", "skipped") for state in states):
        sys.exit(EXIT_FAILED)


@click.command("run")
@click.argument("task")
@click.option(
    "--method",
    "method_ref",
    metavar="NAME|PATH.py|MODULE",
    help="Method (default: the task's first reference method).",
)
@click.option("--profile", default="smoke", show_default=True, help="Profile from the suite spec.")
@seeds_option
@device_option
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a setting; hp.NAME=VALUE sets a method hyperparameter.",
)
@suite_option
@data_dir_option
@click.option(
    "--confine",
    is_flag=True,
    help="Run the method in a bubblewrap sandbox (no network, read-only system, private /tmp):"
    " for method files you did not write. One .py file or a reference name; local executor.",
)
@executor_options
@db_option
@json_option
def run_command(
    task,
    method_ref,
    profile,
    seeds,
    device,
    overrides,
    suite_version,
    data_dir,
    confine,
    db,
    as_json,
    **executor_flags,
) -> None:
    """Run TASK with a method, store the runs, print a summary and the run ids.

    A method is code: it runs with your rights unless --confine is given."""
    from harness.executors.sweep import template

    if confine:
        _run_confined(task, method_ref, profile, seeds, device, overrides, suite_version,
                      data_dir, db, as_json, executor_flags)  # fmt: skip
        return
    work = template(task, method_ref, profile, overrides, suite_version, data_dir)
    run_templates(db, [work], seeds, device, as_json, executor_choice(executor_flags))


def _run_confined(
    task, method_ref, profile, seeds, device, overrides, suite_version, data_dir, db, as_json,
    executor_flags,
) -> None:  # fmt: skip
    """`run --confine`: each seed in the sandbox (harness.run.confine), stored here."""
    from harness.cli.report import print_outcomes
    from harness.errors import InputError
    from harness.executors.sweep import run_confined
    from harness.registry import load_task
    from harness.run.confine import prepare_confined
    from harness.store import open_store

    if executor_flags["executor"] != "local" or executor_flags["nproc_per_node"] != 1:
        raise InputError("--confine runs with the local executor, one process per run")
    method_ref = method_ref or load_task(task).reference_methods[0]
    prepared = prepare_confined(
        task, method_ref, profile, device, list(overrides), suite_version, data_dir
    )
    store = open_store(db)
    install_sigterm_handler()
    outcomes = run_confined(store, prepared, seeds, ConsoleView())
    if as_json:
        print_outcomes_json(outcomes)
    else:
        print_outcomes(outcomes)
        click.echo(f"stored in {store.display_url}", err=True)
    if any(o.status != "succeeded" for o in outcomes):
        sys.exit(EXIT_FAILED)


@click.command("run")
@click.option("--profile", default="smoke", show_default=True, help="Profile for every task.")
@click.option("--task", "only_tasks", multiple=True, help="Only these tasks (repeatable).")
@click.option(
    "--all-methods",
    is_flag=True,
    help="Every reference method, not only the profile's suite_methods.",
)
@seeds_option
@device_option
@suite_option
@data_dir_option
@executor_options
@db_option
@json_option
def suite_run_command(
    profile,
    only_tasks,
    all_methods,
    seeds,
    device,
    suite_version,
    data_dir,
    db,
    as_json,
    **executor_flags,
) -> None:
    """Run every task's reference methods (everything is validated before the first run).

    A profile may name the few a suite run takes (`suite_methods` in the task's spec); then
    --all-methods runs every reference method.
    """
    from harness.executors.suite import suite_templates
    from harness.spec import latest_suite_version

    suite_version = suite_version or latest_suite_version()
    templates = suite_templates(suite_version, profile, only_tasks, all_methods, data_dir)
    run_templates(db, templates, seeds, device, as_json, executor_choice(executor_flags))


@click.command("jobs")
@jobs_dir_option
@json_option
def jobs_command(jobs_dir: Path | None, as_json: bool) -> None:
    """List the Slurm jobs submitted with --executor slurm and their state."""
    from harness.executors.slurm import default_jobs_dir, job_states, read_jobs

    records = read_jobs(jobs_dir or default_jobs_dir())
    print_job_states(job_states(records), as_json)
