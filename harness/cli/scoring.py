"""`regress` and `suite score`: what the store's runs say over time and across tasks
(`harness.score`)."""

from __future__ import annotations

import sys

import click

from harness.cli.options import (
    EXIT_FAILED,
    Fraction,
    as_utc,
    db_option,
    describe_filter,
    json_option,
    results_option,
    suite_option,
)
from harness.cli.output import print_json


@click.command("regress")
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

    from harness.cli.report import print_changes
    from harness.errors import InputError
    from harness.score.regressions import Examined, find_changes, load_series
    from harness.store import open_store

    store = open_store(db)
    with store.session() as session:
        loaded = load_series(session, hardware_key=hardware_key, since=as_utc(since))
        examined = Examined.of(loaded)
        if not examined.series:
            matched = describe_filter(machine=hardware_key, since=since)
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
        print_json([dataclasses.asdict(change) for change in changes])
    else:
        print_changes(changes)
    if fail_on_regression and any(change.is_regression for change in changes):
        sys.exit(EXIT_FAILED)


@click.command("score")
@click.option("--profile", default="smoke", show_default=True, help="Profile scored across tasks.")
@results_option("Score the submissions and bundles under this directory, not a database.")
@suite_option
@db_option
@json_option
def suite_score_command(profile, results_dir, suite_version, db, as_json) -> None:
    """The suite score per machine: performance profile and geometric-mean speedup."""
    from harness.cli.report import print_suite_scores
    from harness.score.inputs import results_store
    from harness.score.suite import compute_suite_scores
    from harness.store import open_store

    with results_store(results_dir) as (store, _submissions):
        store = store or open_store(db)
        scores, tasks = compute_suite_scores(store, profile, suite_version)
        store.dispose()
    if as_json:
        print_json([score.as_dict() for score in scores])
    else:
        print_suite_scores(scores, tasks, profile)
