"""`site build`: the static leaderboard site from a store, bundles or `results/`
(`harness.publish.site`)."""

from __future__ import annotations

from pathlib import Path

import click

from harness.cli.options import db_option, include_private_option, results_option


@click.group("site")
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
@results_option("Build from results/: its submissions (with verification status) and bundles.")
@include_private_option
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

    from harness.errors import InputError
    from harness.publish.site import build_site
    from harness.score.inputs import published_results
    from harness.store import open_store
    from harness.submit.bundles import bundle_files, import_bundles

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
