"""`runs`, `show`, `compare`, `export` and `import`: read the store, and move runs in and out
of it as bundles (`harness.store.queries`, `harness.submit.bundles`, `harness.api`)."""

from __future__ import annotations

from pathlib import Path

import click

from harness.cli.options import (
    as_utc,
    db_option,
    filter_options,
    include_private_option,
    json_option,
    nothing_matches,
    output_option,
    run_filter,
)
from harness.cli.output import print_json, report_reaped, run_summary


@click.command("runs")
@filter_options
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@db_option
@json_option
def runs_command(task, method, profile, status, hardware_key, since, limit, db, as_json) -> None:
    """List stored runs, newest first."""
    from harness.cli.report import print_runs
    from harness.run.liveness import reap_dead_runs
    from harness.store import open_store
    from harness.store.queries import find_runs
    from harness.submit.bundles import run_to_dict

    store = open_store(db)
    report_reaped(reap_dead_runs(store))
    with store.session() as session:
        runs = find_runs(
            session, run_filter(task, method, profile, status, hardware_key, since, limit)
        )
        if not runs:
            nothing_matches(store, task, method, profile, status, hardware_key, since)
        if as_json:
            print_json([run_summary(run_to_dict(r)) for r in runs])
        else:
            print_runs(runs)


@click.command("show")
@click.argument("run_id")
@db_option
@json_option
def show_command(run_id: str, db: str | None, as_json: bool) -> None:
    """Show one run: provenance, machine, settings and every measurement."""
    if as_json:
        from harness.api import show

        print_json(show(run_id, db=db))
        return
    from harness.cli.report import print_run
    from harness.store import open_store
    from harness.store.queries import get_run

    store = open_store(db)
    with store.session() as session:
        print_run(get_run(session, run_id))


@click.command("compare")
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

    from harness.cli.report import print_comparisons
    from harness.errors import InputError
    from harness.score.regressions import compare_runs
    from harness.store import open_store
    from harness.store.queries import select_group

    store = open_store(db)
    with store.session() as session:
        comparisons = compare_runs(select_group(session, group_a), select_group(session, group_b))
    if not comparisons:
        raise InputError("the two sides share no metric")
    if as_json:
        print_json([{**dataclasses.asdict(item), "verdict": item.verdict} for item in comparisons])
    else:
        print_comparisons(comparisons)


@click.command("export")
@filter_options
@output_option("Bundle file to write.")
@include_private_option
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
        since=as_utc(since),
    )
    click.echo(f"wrote {runs} runs on {machines} machines to {output}")


@click.command("import")
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
    from harness.pytest_benchmark import bundle_from_pytest_benchmark
    from harness.store import open_store
    from harness.submit.bundles import import_validated, read_bundle

    convert = bundle_from_pytest_benchmark if file_format == "pytest-benchmark" else read_bundle
    bundles = [(path, convert(path)) for path in files]
    store = open_store(db)
    result = import_validated(store, bundles)
    if as_json:
        print_json(result.__dict__)
    else:
        click.echo(
            f"imported {result.runs_added} runs ({result.runs_already_present} already present),"
            f" {result.machines_added} new machines"
        )
