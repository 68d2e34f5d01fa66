"""The `budgetbench` command line: thin click commands over harness functions.

Exit codes: 0 ok, 1 a run or check failed, 2 bad usage or input, 130 interrupted. Errors print
one line; `--debug` shows tracebacks. Heavy imports (torch, SQLAlchemy, tasks) happen inside the
commands so `budgetbench --help` stays fast.
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Any

import click

from harness import __version__

EXIT_FAILED = 1
EXIT_INPUT = 2
EXIT_INTERRUPTED = 130
_debug = False

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


def _include_private_option(function):
    return click.option(
        "--include-private",
        is_flag=True,
        help="Publish the host name, user, process id, command line and paths of each run"
        " (left out by default; the store keeps them).",
    )(function)


def _output_option(help_text: str):
    return _path_option("-o", "--output", help_text, directory=False, required=True)


def _results_option(help_text: str):
    return _path_option("--results", "results_dir", help_text, directory=True)


def _path_option(first: str, second: str, help_text: str, directory: bool, required=False):
    kind = click.Path(file_okay=not directory, dir_okay=directory, path_type=Path)
    return click.option(first, second, type=kind, required=required, help=help_text)


def _executor_options(function):
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


def _executor_choice(executor_flags: dict[str, Any]):
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


def _filter_options(function):
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


def _run_filter(task, method, profile, status, hardware_key, since, limit=None):
    from harness.store.queries import RunFilter

    return RunFilter(
        task=task,
        method=method,
        profile=profile,
        status=status,
        hardware_key=hardware_key,
        since=_as_utc(since),
        limit=limit,
    )


def _describe_filter(**filters: Any) -> str:
    """`task=probe, since=...` for the filters given, as a phrase ending in a space."""
    given = ", ".join(f"{name}={value}" for name, value in filters.items() if value is not None)
    return f"match {given} " if given else ""


def _nothing_matches(store, task, method, profile, status, hardware_key, since) -> None:
    """A listing that found nothing is an error (exit 2), never an empty all-clear."""
    from harness.errors import InputError

    matched = _describe_filter(
        task=task,
        method=method,
        profile=profile,
        status=status,
        machine=hardware_key,
        since=since,
    )
    raise InputError(f"no runs {matched or 'stored '}in {store.display_url}")


def _as_utc(moment):
    """--since is given in UTC without an offset (click.DateTime is naive)."""
    from datetime import timezone

    return moment.replace(tzinfo=timezone.utc) if moment else None


jobs_dir_option = click.option(
    "--jobs-dir",
    envvar="BUDGETBENCH_JOBS_DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="slurm: where submitit keeps job files and budgetbench its job list"
    " [env BUDGETBENCH_JOBS_DIR; default <cache dir>/jobs].",
)


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="budgetbench")
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
def cli(debug: bool) -> None:
    """budgetbench: efficient deep learning under a budget, measured the same way every time.

    Run versioned tasks with a method, store every measurement with its provenance, and compare
    methods and machines over time.
    """
    global _debug
    _debug = debug


@cli.command("tasks")
@click.argument("task", required=False)
@suite_option
@json_option
def tasks_command(task: str | None, suite_version: str | None, as_json: bool) -> None:
    """List tasks, their reference methods, profiles and metrics; with TASK, print its method
    interface: the functions a method implements (typed signatures and what they may do), the
    module constants and the reserved hyperparameters with their bounds."""
    from harness.errors import InputError
    from harness.registry import load_task, task_names
    from harness.spec import latest_suite_version, load_spec

    if task is not None:
        from harness.methods import interface_json, interface_text

        task_cls = load_task(task)
        if as_json:
            _print_json(interface_json(task_cls))
        else:
            click.echo(interface_text(task_cls))
        return
    suite_version = suite_version or latest_suite_version()
    rows = []
    for name in task_names():
        task_cls = load_task(name)
        try:
            profiles = sorted(load_spec(name, suite_version).profiles)
        except InputError:  # an installed task without a spec in this suite version
            profiles = []
        rows.append(
            {
                "task": name,
                "description": task_cls.description,
                "reference_methods": list(task_cls.reference_methods),
                "profiles": profiles,
                "metrics": [
                    {"name": m.name, "unit": m.unit, "higher_is_better": m.higher_is_better}
                    for m in task_cls.metrics
                ],
                "method_interface": [f.signature for f in task_cls.method_interface],
            }
        )
    if as_json:
        _print_json({"suite_version": suite_version, "tasks": rows})
        return
    from harness.report import print_tasks

    print_tasks(suite_version, rows)


def _install_sigterm_handler() -> None:
    from harness.runner import Interrupted

    def handler(signum, frame):
        raise Interrupted()

    signal.signal(signal.SIGTERM, handler)


def _execute(db, templates, seeds: int, device: str, as_json: bool, options) -> None:
    """Run every template for every seed with the chosen executor; print outcomes; exit 1 if
    any run failed (everything is validated before the first run starts)."""
    from harness.executors import SKIPPED
    from harness.executors.sweep import plan_sweep
    from harness.report import now_running, print_outcomes, progress_tracker
    from harness.store.database import resolve_db_url

    with progress_tracker():  # checking every task and method takes a while: say so in a log
        now_running(f"checking {len(templates)} task/method pair(s) before the first run")
        sweep = plan_sweep(templates, seeds, device, options)
    if options.executor == "slurm":
        _submit(resolve_db_url(db), sweep, options, as_json)
        return
    store, outcomes = _run_sweep(db, sweep, options)
    if as_json:
        _print_json([_outcome_json(o) for o in outcomes])
    else:
        print_outcomes(outcomes)
        click.echo(f"stored in {store.display_url}", err=True)
    if any(o.status not in ("succeeded", SKIPPED) for o in outcomes):
        sys.exit(EXIT_FAILED)


def _run_sweep(db, sweep, options):
    """Run a planned sweep here (local) or in a pool of workers; returns the store and the
    outcomes in the order they finished, each printed as it finishes."""
    from harness.machine import collect_fingerprint
    from harness.report import now_running, print_outcome_line, progress_tracker
    from harness.runner import reap_dead_runs, save_machine
    from harness.store import open_store
    from harness.store.database import resolve_db_url

    store = open_store(db)
    _report_reaped(reap_dead_runs(store))
    outcomes = []

    def finished(outcome) -> None:
        outcomes.append(outcome)
        print_outcome_line(outcome)

    _install_sigterm_handler()
    if sweep.slots is None:
        machine_id = save_machine(store, collect_fingerprint())
        with progress_tracker() as tracker:
            for item, prepared in sweep.items:
                now_running(f"{item.task} / {item.method} / {item.profile} / seed {item.seed}")
                outcome, note = _run_logged(
                    store, item, prepared, machine_id, options.resume, tracker
                )
                finished(outcome)
                if note:
                    click.echo(note, err=True)
    else:
        import tempfile

        from harness.executors.pool import run_pool

        log_dir = Path(tempfile.mkdtemp(prefix="budgetbench-pool-"))
        labels = ", ".join(slot.label for slot in sweep.slots)
        click.echo(f"{len(sweep.slots)} worker(s): {labels}; logs in {log_dir}", err=True)
        run_pool(
            store,
            resolve_db_url(db),
            [item for item, _ in sweep.items],
            sweep.slots,
            finished,
            resume=options.resume,
            nproc_per_node=options.nproc_per_node,
            log_dir=log_dir,
        )
    return store, outcomes


def _run_logged(store, item, prepared, machine_id: str, resume: bool, tracker):
    """Run one item here with third-party stderr in its log file (`harness.capture`); returns
    the outcome and a line saying how much went there (None when nothing did)."""
    from harness.capture import logs_dir, third_party_output_to
    from harness.executors import run_item

    pending = logs_dir() / f"pending-{item.sweep_id}-{item.task}-seed{item.seed}.log"
    with third_party_output_to(pending) as captured:
        outcome = run_item(store, item, prepared, machine_id, resume=resume, tracker=tracker)
    if not captured.lines:
        pending.unlink(missing_ok=True)
        return outcome, None
    log_file = pending.with_name(f"{outcome.run_id}.log")
    pending.replace(log_file)
    return outcome, f"  {captured.lines} line(s) of third-party output (warnings...) in {log_file}"


def _submit(db_url: str, sweep, options, as_json: bool) -> None:
    """Submit the sweep as Slurm jobs; with --wait, wait and report like a local sweep."""
    from harness.executors.slurm import default_jobs_dir, submit

    jobs_dir = options.jobs_dir or default_jobs_dir()
    if db_url.startswith("sqlite") and options.slurm.cluster != "local":
        click.echo(
            "warning: Slurm jobs on several nodes need a shared store: use --db postgresql://..."
            " (SQLite on a network filesystem is not safe)",
            err=True,
        )
    records, _jobs = submit(
        [item for item, _ in sweep.items],
        db_url,
        options.slurm,
        jobs_dir,
        resume=options.resume,
        nproc_per_node=options.nproc_per_node,
    )
    ids = ", ".join(record.job_id for record in records)
    click.echo(f"submitted {len(records)} job(s): {ids} (see `budgetbench jobs`)", err=True)
    if not options.wait:
        if as_json:
            _print_json([record.__dict__ for record in records])
        return
    from harness.executors.slurm import wait_for_jobs

    states = wait_for_jobs(records, lambda line: click.echo(line, err=True))
    _print_job_states(states, as_json)
    if any((state.outcome or {}).get("status") not in ("succeeded", "skipped") for state in states):
        sys.exit(EXIT_FAILED)


def _print_job_states(states, as_json: bool) -> None:
    if as_json:
        rows = [{**state.record.__dict__, "state": state.state} for state in states]
        _print_json([{**row, "outcome": s.outcome} for row, s in zip(rows, states, strict=True)])
        return
    from harness.report import print_jobs

    print_jobs(states)


def _report_reaped(run_ids: list[str]) -> None:
    for run_id in run_ids:
        click.echo(
            f"marked run {run_id[:8]} failed: its process died without finishing it", err=True
        )


def _outcome_json(outcome) -> dict[str, Any]:
    return {
        "run_id": outcome.run_id,
        "task": outcome.task,
        "method": outcome.method_name,
        "profile": outcome.profile,
        "seed": outcome.seed,
        "status": outcome.status,
        "error": outcome.error,
        "gate_passed": outcome.gate_passed,
        "wall_s": outcome.wall_s,
        "measurements": {name: value for name, (value, _unit) in outcome.scalars.items()},
    }


@cli.command("run")
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
@_executor_options
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

    if confine:
        _run_confined(task, method_ref, profile, seeds, device, overrides, suite_version,
                      data_dir, db, as_json, executor_flags)  # fmt: skip
        return

    template = _template(task, method_ref, profile, overrides, suite_version, data_dir)
    _execute(db, [template], seeds, device, as_json, _executor_choice(executor_flags))


def _template(task, method_ref, profile, overrides, suite_version, data_dir):
    """The work item a sweep repeats for each seed (seed 0 here; the sweep sets the rest)."""
    from harness.executors import WorkItem

    return WorkItem(
        task=task,
        method=method_ref,
        profile=profile,
        seed=0,
        overrides=tuple(overrides),
        suite_version=suite_version,
        data_dir=str(Path(data_dir).resolve()) if data_dir else None,
    )


def _run_confined(
    task, method_ref, profile, seeds, device, overrides, suite_version, data_dir, db, as_json,
    executor_flags,
) -> None:  # fmt: skip
    """`run --confine`: each seed in the sandbox (harness.confine), stored here."""
    from harness.confine import prepare_confined
    from harness.errors import InputError
    from harness.machine import collect_fingerprint
    from harness.registry import load_task
    from harness.report import print_outcome_line, print_outcomes, progress_tracker
    from harness.runner import execute, save_machine
    from harness.store import open_store

    if executor_flags["executor"] != "local" or executor_flags["nproc_per_node"] != 1:
        raise InputError("--confine runs with the local executor, one process per run")
    method_ref = method_ref or load_task(task).reference_methods[0]
    prepared = prepare_confined(
        task, method_ref, profile, device, list(overrides), suite_version, data_dir
    )
    store = open_store(db)
    machine_id = save_machine(store, collect_fingerprint())
    _install_sigterm_handler()
    outcomes = []
    with progress_tracker() as tracker:
        for outcome in execute(store, prepared, range(seeds), machine_id, tracker):
            outcomes.append(outcome)
            print_outcome_line(outcome)
    if as_json:
        _print_json([_outcome_json(o) for o in outcomes])
    else:
        print_outcomes(outcomes)
        click.echo(f"stored in {store.display_url}", err=True)
    if any(o.status != "succeeded" for o in outcomes):
        sys.exit(EXIT_FAILED)


@cli.command("submit")
@click.argument("task")
@click.option("--method", "method_ref", required=True, metavar="NAME|PATH.py|MODULE")
@click.option("--profile", default="smoke", show_default=True, help="Profile from the suite spec.")
@click.option(
    "--seeds",
    type=click.IntRange(min=1, max=MAX_SEEDS),
    default=None,
    help="Seeds 0..N-1 [default: the profile's required seeds in the suite spec].",
)
@click.option(
    "--division",
    type=click.Choice(["closed", "open"]),
    default="closed",
    show_default=True,
    help="closed: only the method changed; open: anything else (say what in --description).",
)
@click.option(
    "--description", default="", help="What the method does, and what an open entry changed."
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="hp.NAME=VALUE sets a hyperparameter; other settings need --division open.",
)
@_output_option("Submission file to write (e.g. results/TASK/PROFILE/NAME.submission.json).")
@click.option(
    "--submitter", default=None, help="Who submits (a name or handle), shown on the site."
)
@click.option("--link", "links", multiple=True, metavar="URL", help="Paper or code (http/https).")
@click.option(
    "--suite-entry",
    default=None,
    help="The method family this belongs to across tasks; the suite score ranks such families.",
)
@click.option(
    "--from-runs",
    "from_runs",
    multiple=True,
    metavar="RUN_ID",
    help="Package runs already stored (their ids, 4+ characters each) instead of running:"
    " the method's runs of this profile and settings, one machine, the required seeds.",
)
@_include_private_option
@device_option
@suite_option
@data_dir_option
@_executor_options
@db_option
def submit_command(
    task, method_ref, profile, seeds, division, description, overrides, output, submitter, links,
    suite_entry, from_runs, include_private, device, suite_version, data_dir, db, **executor_flags,
) -> None:  # fmt: skip
    """Run the required seeds of a method on TASK (here, or in a pool with --executor pool) or
    take runs already stored (--from-runs), and write one self-contained submission."""
    from harness.errors import InputError
    from harness.report import print_outcome_line, progress_tracker
    from harness.store import open_store
    from harness.submissions import (
        publishable_submission,
        submit,
        submit_from_runs,
        with_submitter,
        write_submission,
    )

    with_submitter({}, submitter, list(links), suite_entry)  # bad values fail before any run
    options = _executor_choice(executor_flags)
    if options.executor == "slurm":
        raise InputError(
            "submit runs here or in a pool (--executor local|pool); on a Slurm cluster, run the"
            " seeds with `budgetbench run ... --executor slurm --wait`, then `submit --from-runs`"
        )
    if from_runs and (seeds is not None or options.executor != "local"):
        raise InputError("--from-runs packages stored runs: it takes no --seeds or --executor")
    store = open_store(db)
    arguments = (task, method_ref, profile)
    settings = (list(overrides), division, description, device, data_dir, suite_version)
    if from_runs:
        result = submit_from_runs(store, *arguments, list(from_runs), *settings)
    elif options.executor == "local":
        _install_sigterm_handler()
        with progress_tracker() as tracker:
            result = submit(store, *arguments, seeds, *settings, tracker)
    else:
        result = _submit_in_pool(db, store, arguments, seeds, settings, options)
    if options.executor == "local":  # a pool printed each outcome as it finished
        for outcome in result.outcomes:
            print_outcome_line(outcome)
    if result.data is None:
        click.echo(f"budgetbench: no submission written: {result.problem}", err=True)
        sys.exit(EXIT_FAILED)
    data, left_out = publishable_submission(
        with_submitter(result.data, submitter, list(links), suite_entry), include_private
    )
    for line in left_out:
        click.echo(f"budgetbench: not enclosed: {line}", err=True)
    write_submission(data, output)
    click.echo(
        f"wrote {output}: {len(result.outcomes)} seeds of {result.data['method']['name']}"
        f" ({division} division); check it with `budgetbench verify {output}`"
    )


def _submit_in_pool(db, store, arguments, seeds, settings, options):
    """Run a submission's seeds with the pool executor, then package the runs it stored."""
    from harness.executors.sweep import plan_sweep
    from harness.submissions import SubmitResult, prepare_submission, submit_from_runs

    task, method_ref, profile = arguments
    overrides, division, description, device, data_dir, suite_version = settings
    _, count = prepare_submission(
        task, method_ref, profile, seeds, overrides, division, description, device, data_dir,
        suite_version,
    )  # fmt: skip
    template = _template(task, method_ref, profile, overrides, suite_version, data_dir)
    _, outcomes = _run_sweep(db, plan_sweep([template], count, device, options), options)
    failed = [o for o in outcomes if o.status != "succeeded"]
    if failed:
        first = (failed[0].error or "").splitlines()[0] if failed[0].error else failed[0].status
        return SubmitResult(None, outcomes, f"seed {failed[0].seed} failed: {first}")
    return submit_from_runs(store, *arguments, [o.run_id for o in outcomes], *settings)


@cli.command("verify")
@click.argument("submission", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--rerun",
    type=click.IntRange(min=0, max=100),
    default=0,
    show_default=True,
    help="Re-run this many of the submitted seeds here (stored in --db) and compare.",
)
@click.option(
    "--max-rounds",
    type=click.IntRange(min=1, max=10),
    default=3,
    show_default=True,
    help="Repeat the re-run at most this many rounds while a comparison is inconclusive.",
)
@click.option(
    "--report",
    "report",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="[PATH]",
    help="Write the verification report (default path: beside the submission).",
)
@click.option(
    "--sign",
    "sign_key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Sign the report with this SSH private key (ssh-keygen -Y sign); needs --signer.",
)
@click.option("--signer", help="The principal the key signs as (its allowed_signers name).")
@device_option
@data_dir_option
@db_option
@json_option
def verify_command(
    submission, rerun, max_rounds, report, sign_key, signer, device, data_dir, db, as_json
) -> None:
    """Check a submission as a reviewer would: exit 0 accepted, 1 rejected (every reason
    listed), 2 unreadable. The status is *checked* without a re-run; --rerun N runs the enclosed
    method here, confined (bwrap), and stores its runs in --db."""
    from harness.errors import InputError
    from harness.report import print_verification, progress_tracker
    from harness.signatures import Signer
    from harness.submissions import read_submission, report_path
    from harness.verify import verify_submission, write_report

    if (sign_key is None) != (signer is None) or (sign_key and report is None):
        raise InputError("--sign KEY and --signer NAME go together, with --report")
    loaded = read_submission(submission)
    store = None
    if rerun:
        from harness.store import open_store

        store = open_store(db)
    with progress_tracker() as tracker:
        verification = verify_submission(
            loaded, rerun, device, data_dir, tracker, store, max_rounds
        )
    if report is not None:
        target = Path(report) if report else report_path(submission)
        write_report(verification, target, Signer(sign_key, signer) if sign_key else None)
    if as_json:
        _print_json(verification.as_dict())
    else:
        print_verification(verification)
    if not verification.accepted:
        sys.exit(EXIT_FAILED)


@cli.command("new-method")
@click.argument("task")
@click.option(
    "--from",
    "reference",
    metavar="NAME",
    help="The reference method to start from (default: the task's first).",
)
@_output_option("The new method file (.py; must not exist).")
def new_method_command(task: str, reference: str | None, output: Path) -> None:
    """Write a self-contained method file for TASK, copied from a reference method with the
    helpers it imports from the task's internals copied in."""
    from harness.new_method import write_new_method

    name = write_new_method(task, reference, output)
    click.echo(
        f"wrote {output}: method {name!r}; run it with `budgetbench run {task} --method {output}`"
    )


@cli.command("collectives")
@click.option(
    "--nproc-per-node",
    type=click.IntRange(min=2),
    default=2,
    show_default=True,
    help="Ranks, launched by torchrun on this machine (one per GPU with --device cuda).",
)
@click.option(
    "--device",
    type=click.Choice(["cpu", "cuda"]),
    default="cpu",
    show_default=True,
    help="cpu: gloo; cuda: NCCL.",
)
@click.option("--sizes", metavar="BYTES,...", help="Message sizes [default: 1 KiB to 16 MiB].")
@click.option("--iters", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--warmup", type=click.IntRange(min=0), default=5, show_default=True)
@json_option
def collectives_command(nproc_per_node, device, sizes, iters, warmup, as_json) -> None:
    """Bus bandwidth of all-reduce, all-gather and broadcast (nccl-tests' algbw and busbw)."""
    import dataclasses

    from harness.collectives import DEFAULT_SIZES, launch
    from harness.errors import InputError
    from harness.report import print_collectives

    try:
        chosen = tuple(int(s) for s in sizes.split(",")) if sizes else DEFAULT_SIZES
    except ValueError as exc:
        raise InputError(f"--sizes: {sizes!r} is not a list of byte counts") from exc
    if any(size < 4 for size in chosen):
        raise InputError("--sizes: each message needs at least 4 bytes (one float32)")
    results = launch(nproc_per_node, device, chosen, iters, warmup)
    if as_json:
        _print_json([dataclasses.asdict(result) for result in results])
    else:
        print_collectives(results)


@cli.group("suite")
def suite_group() -> None:
    """Run the whole suite."""


@suite_group.command("run")
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
@_executor_options
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
    from harness.errors import InputError
    from harness.executors import WorkItem
    from harness.registry import load_task, task_names
    from harness.spec import latest_suite_version, spec_task_names

    suite_version = suite_version or latest_suite_version()
    installed = set(task_names())
    names = [n for n in spec_task_names(suite_version) if n in installed]
    for name in only_tasks:
        if name not in names:
            raise InputError(
                f"task {name!r} is not in suite {suite_version} (tasks: {', '.join(names)})"
            )
    names = [n for n in names if not only_tasks or n in only_tasks]
    templates = [
        WorkItem(
            task=name,
            method=method,
            profile=profile,
            seed=0,
            suite_version=suite_version,
            data_dir=str(data_dir.resolve()) if data_dir else None,
        )
        for name in names
        for method in (
            load_task(name).reference_methods
            if all_methods
            else _suite_methods(name, profile, suite_version)
        )
    ]
    _execute(db, templates, seeds, device, as_json, _executor_choice(executor_flags))


def _suite_methods(task: str, profile: str, suite_version: str) -> tuple[str, ...]:
    """The reference methods `suite run` runs for `task` at `profile`; a name the task does not
    have is a mistake in the spec, reported before anything runs."""
    from harness.errors import InputError
    from harness.registry import load_task
    from harness.spec import load_spec

    references = load_task(task).reference_methods
    chosen = load_spec(task, suite_version).suite_methods.get(profile, references)
    unknown = sorted(set(chosen) - set(references))
    if unknown:
        raise InputError(
            f"suite {suite_version} {task}.toml: suite_methods of profile {profile!r} names"
            f" {', '.join(unknown)}, not reference methods of {task}"
        )
    return chosen


@cli.command("jobs")
@jobs_dir_option
@json_option
def jobs_command(jobs_dir: Path | None, as_json: bool) -> None:
    """List the Slurm jobs submitted with --executor slurm and their state."""
    from harness.executors.slurm import default_jobs_dir, job_states, read_jobs

    records = read_jobs(jobs_dir or default_jobs_dir())
    _print_job_states(job_states(records), as_json)


@suite_group.command("score")
@click.option("--profile", default="smoke", show_default=True, help="Profile scored across tasks.")
@_results_option("Score the submissions and bundles under this directory, not a database.")
@suite_option
@db_option
@json_option
def suite_score_command(profile, results_dir, suite_version, db, as_json) -> None:
    """The suite score per machine: performance profile and geometric-mean speedup."""
    from harness.report import print_suite_scores
    from harness.site import compute_suite_scores, results_store
    from harness.store import open_store

    with results_store(results_dir) as (store, _submissions):
        store = store or open_store(db)
        scores, tasks = compute_suite_scores(store, profile, suite_version)
        store.dispose()
    if as_json:
        _print_json([score.as_dict() for score in scores])
    else:
        print_suite_scores(scores, tasks, profile)


@cli.command("runs")
@_filter_options
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@db_option
@json_option
def runs_command(task, method, profile, status, hardware_key, since, limit, db, as_json) -> None:
    """List stored runs, newest first."""
    from harness.bundles import run_to_dict
    from harness.report import print_runs
    from harness.runner import reap_dead_runs
    from harness.store import open_store
    from harness.store.queries import find_runs

    store = open_store(db)
    _report_reaped(reap_dead_runs(store))
    with store.session() as session:
        runs = find_runs(
            session, _run_filter(task, method, profile, status, hardware_key, since, limit)
        )
        if not runs:
            _nothing_matches(store, task, method, profile, status, hardware_key, since)
        if as_json:
            _print_json([_summary(run_to_dict(r)) for r in runs])
        else:
            print_runs(runs)


def _summary(run: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in run.items() if k not in ("measurements", "curve_points", "artifacts")}


@cli.command("show")
@click.argument("run_id")
@db_option
@json_option
def show_command(run_id: str, db: str | None, as_json: bool) -> None:
    """Show one run: provenance, machine, settings and every measurement."""
    if as_json:
        from harness.api import show

        _print_json(show(run_id, db=db))
        return
    from harness.report import print_run
    from harness.store import open_store
    from harness.store.queries import get_run

    store = open_store(db)
    with store.session() as session:
        print_run(get_run(session, run_id))


@cli.command("machine")
@json_option
def machine_command(as_json: bool) -> None:
    """Print this machine's fingerprint and its hardware and software keys."""
    from harness.machine import collect_fingerprint
    from harness.report import print_fingerprint

    fingerprint = collect_fingerprint()
    if as_json:
        _print_json(
            {
                "id": fingerprint.id,
                "hardware_key": fingerprint.hardware_key,
                "software_key": fingerprint.software_key,
                "hardware_label": fingerprint.hardware_label,
                **fingerprint.as_dict(),
            }
        )
    else:
        print_fingerprint(fingerprint)


@cli.command("export")
@_filter_options
@_output_option("Bundle file to write.")
@_include_private_option
@db_option
def export_command(
    task, method, profile, status, hardware_key, since, output, include_private, db
) -> None:
    """Export finished runs with their machines and provenance to a JSON bundle."""
    from harness.api import export

    runs, machines = export(
        output,
        db=db,
        include_private=include_private,
        on_left_out=lambda line: click.echo(f"budgetbench: not enclosed: {line}", err=True),
        task=task,
        method=method,
        profile=profile,
        status=status,
        machine=hardware_key,
        since=_as_utc(since),
    )
    click.echo(f"wrote {runs} runs on {machines} machines to {output}")


@cli.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--format",
    "file_format",
    type=click.Choice(["bundle", "pytest-benchmark"]),
    default="bundle",
    show_default=True,
    help="bundle: budgetbench's export; pytest-benchmark: a --benchmark-json file.",
)
@db_option
@json_option
def import_command(
    files: tuple[Path, ...], file_format: str, db: str | None, as_json: bool
) -> None:
    """Validate files and load them (all or nothing; importing twice adds nothing)."""
    from harness.bundles import import_validated, read_bundle
    from harness.pytest_benchmark import bundle_from_pytest_benchmark
    from harness.store import open_store

    convert = bundle_from_pytest_benchmark if file_format == "pytest-benchmark" else read_bundle
    bundles = [(path, convert(path)) for path in files]
    store = open_store(db)
    result = import_validated(store, bundles)
    if as_json:
        _print_json(result.__dict__)
    else:
        click.echo(
            f"imported {result.runs_added} runs ({result.runs_already_present} already present),"
            f" {result.machines_added} new machines"
        )


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


@cli.command("regress")
@click.option("--machine", "hardware_key", metavar="KEY", help="Only this hardware key (prefix).")
@click.option("--since", type=click.DateTime(), help="Only runs started at or after (UTC).")
@click.option(
    "--threshold",
    type=Fraction(),
    default="5%",
    show_default=True,
    help="Smallest change reported.",
)
@click.option(
    "--alpha",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.01,
    show_default=True,
    help="Significance level of the Mann-Whitney U test.",
)
@click.option(
    "--fail-on-regression", is_flag=True, help="Exit 1 when a regression is found (for CI)."
)
@db_option
@json_option
def regress_command(hardware_key, since, threshold, alpha, fail_on_regression, db, as_json) -> None:
    """Find steps in every metric's history per machine, with the software that changed."""
    import dataclasses

    from harness.errors import InputError
    from harness.regressions import Examined, find_changes, load_series
    from harness.report import print_changes
    from harness.store import open_store

    store = open_store(db)
    with store.session() as session:
        loaded = load_series(session, hardware_key=hardware_key, since=_as_utc(since))
        examined = Examined.of(loaded)
        if not examined.series:
            matched = _describe_filter(machine=hardware_key, since=since)
            raise InputError(
                f"regress: no succeeded runs {matched}in {store.display_url}: nothing to examine"
            )
        changes = find_changes(session, threshold=threshold, alpha=alpha, loaded=loaded)
    click.echo(
        f"examined {examined.series} series: {examined.runs} runs on {examined.machines}"
        f" machine(s)",
        err=True,
    )
    if as_json:
        _print_json([dataclasses.asdict(change) for change in changes])
    else:
        print_changes(changes)
    if fail_on_regression and any(change.is_regression for change in changes):
        sys.exit(EXIT_FAILED)


@cli.command("compare")
@click.argument("group_a")
@click.argument("group_b")
@db_option
@json_option
def compare_command(group_a: str, group_b: str, db: str | None, as_json: bool) -> None:
    """Compare B against A: a run id each, or groups like method=eager,machine=34ee.

    One run is judged by its repetitions; a group of runs by one value per run. Group keys: task,
    method, profile, machine, software, spec.
    """
    import dataclasses

    from harness.errors import InputError
    from harness.regressions import compare_runs
    from harness.report import print_comparisons
    from harness.store import open_store
    from harness.store.queries import select_group

    store = open_store(db)
    with store.session() as session:
        comparisons = compare_runs(select_group(session, group_a), select_group(session, group_b))
    if not comparisons:
        raise InputError("the two sides share no metric")
    if as_json:
        _print_json([{**dataclasses.asdict(item), "verdict": item.verdict} for item in comparisons])
    else:
        print_comparisons(comparisons)


@cli.group("site")
def site_group() -> None:
    """Build the static leaderboard site."""


@site_group.command("build")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory to write the site into (replaced if it holds an earlier build).",
)
@click.option(
    "--bundles",
    "bundle_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Build from the bundles in this directory instead of a database.",
)
@_results_option("Build from results/: its submissions (with verification status) and bundles.")
@_include_private_option
@db_option
def site_build_command(
    out: Path,
    bundle_dir: Path | None,
    results_dir: Path | None,
    include_private: bool,
    db: str | None,
) -> None:
    """Render leaderboards, method, run and machine pages, and regressions as static HTML."""
    import tempfile

    from harness.bundles import bundle_files, import_bundles
    from harness.errors import InputError
    from harness.site import build_site, published_results
    from harness.store import open_store

    if bundle_dir is not None and results_dir is not None:
        raise InputError("give --bundles or --results, not both")
    if results_dir is not None:
        with published_results(results_dir) as results:
            summary = build_site(
                results.store, out, results.submissions, results.rejected, include_private
            )
        for item in results.rejected:
            click.echo(
                f"budgetbench: rejected results/{item.relative_path}: {item.reason}", err=True
            )
    else:
        with tempfile.TemporaryDirectory(prefix="budgetbench-site-") as scratch:
            if bundle_dir is not None:
                store = open_store(str(Path(scratch) / "bundles.db"))
                import_bundles(store, bundle_files(bundle_dir))
            else:
                store = open_store(db)
            summary = build_site(store, out, include_private=include_private)
            store.dispose()
    click.echo(
        f"built {summary.pages} pages for {summary.runs} runs on {summary.machines} machines"
        f" ({summary.leaderboards} leaderboards): open {out / 'index.html'}"
    )


@cli.group("db")
def db_group() -> None:
    """Manage the database schema."""


@db_group.command("upgrade")
@db_option
def db_upgrade_command(db: str | None) -> None:
    """Migrate the database schema to this budgetbench's version, keeping every row."""
    from harness.store.database import make_engine, resolve_db_url, upgrade

    engine = make_engine(resolve_db_url(db))
    try:
        before, after = upgrade(engine)
    finally:
        engine.dispose()
    if before == after:
        click.echo(f"schema already at revision {after}")
    else:
        click.echo(f"upgraded schema from revision {before or 'empty'} to {after}")


def _missing_module(exc: ModuleNotFoundError) -> None:
    """A library of an extra that is not installed: the pip command, exit 2 (an install
    problem, not a bug); any other missing module is an internal error."""
    from harness.extras import extra_providing

    extra = extra_providing(exc.name or "")
    if extra is None or _debug:
        raise exc
    click.echo(
        f"budgetbench: error: {exc.name} is not installed: pip install 'budgetbench[{extra}]'",
        err=True,
    )
    sys.exit(EXIT_INPUT)


def main() -> None:
    """Entry point: run the CLI and turn errors into one line and an exit code."""
    from harness.errors import InputError

    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except InputError as exc:
        if _debug:
            raise
        click.echo(f"budgetbench: error: {exc}", err=True)
        sys.exit(EXIT_INPUT)
    except KeyboardInterrupt:
        click.echo("budgetbench: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except ModuleNotFoundError as exc:
        _missing_module(exc)
    except Exception as exc:
        if _debug:
            raise
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        click.echo(
            f"budgetbench: internal error: {type(exc).__name__}: {message}"
            " (rerun with --debug for the traceback)",
            err=True,
        )
        sys.exit(EXIT_FAILED)
    except BaseException as exc:
        from harness.runner import Interrupted

        if isinstance(exc, Interrupted):
            click.echo("budgetbench: terminated", err=True)
            sys.exit(EXIT_INTERRUPTED)
        raise
