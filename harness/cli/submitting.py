"""`submit` and `verify`: package a method's runs into one self-contained submission
(`harness.submit.submissions`), and check one as a reviewer would (`harness.submit.verify`)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from harness.cli.options import (
    EXIT_FAILED,
    MAX_SEEDS,
    data_dir_option,
    db_option,
    device_option,
    executor_choice,
    executor_options,
    include_private_option,
    json_option,
    output_option,
    suite_option,
)
from harness.cli.output import print_json


@click.command("submit")
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
@output_option("Submission file to write (e.g. results/TASK/PROFILE/NAME.submission.json).")
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
@include_private_option
@device_option
@suite_option
@data_dir_option
@executor_options
@db_option
def submit_command(
    task, method_ref, profile, seeds, division, description, overrides, output, submitter, links,
    suite_entry, from_runs, include_private, device, suite_version, data_dir, db, **executor_flags,
) -> None:  # fmt: skip
    """Run the required seeds of a method on TASK (here, or in a pool with --executor pool) or
    take runs already stored (--from-runs), and write one self-contained submission."""
    from harness.cli.report import print_outcome_line, progress_tracker
    from harness.cli.running import install_sigterm_handler
    from harness.errors import InputError
    from harness.store import open_store
    from harness.submit.submissions import (
        publishable_submission,
        submit,
        submit_from_runs,
        with_submitter,
        write_submission,
    )

    with_submitter({}, submitter, list(links), suite_entry)  # bad values fail before any run
    options = executor_choice(executor_flags)
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
        install_sigterm_handler()
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
    """Run a submission's seeds with the pool executor, then package the runs it stored (with
    the run prepared for the submission's own check, not prepared again)."""
    from harness.cli.running import run_sweep_here
    from harness.executors.sweep import plan_sweep, template
    from harness.submit.submissions import SubmitResult, prepare_submission, submit_from_runs

    task, method_ref, profile = arguments
    overrides, division, description, device, data_dir, suite_version = settings
    prepared, count = prepare_submission(
        task, method_ref, profile, seeds, overrides, division, description, device, data_dir,
        suite_version,
    )  # fmt: skip
    work = template(task, method_ref, profile, overrides, suite_version, data_dir)
    _, outcomes = run_sweep_here(db, plan_sweep([work], count, device, options), options)
    failed = [o for o in outcomes if o.status != "succeeded"]
    if failed:
        first = (failed[0].error or "").splitlines()[0] if failed[0].error else failed[0].status
        return SubmitResult(None, outcomes, f"seed {failed[0].seed} failed: {first}")
    run_ids = [o.run_id for o in outcomes]
    return submit_from_runs(store, *arguments, run_ids, *settings, prepared=prepared)


@click.command("verify")
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
    from harness.cli.report import print_verification, progress_tracker
    from harness.errors import InputError
    from harness.submit.signatures import Signer
    from harness.submit.submissions import read_submission, report_path
    from harness.submit.verify import verify_submission, write_report

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
        print_json(verification.as_dict())
    else:
        print_verification(verification)
    if not verification.accepted:
        sys.exit(EXIT_FAILED)
