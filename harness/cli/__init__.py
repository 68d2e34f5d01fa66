"""The `budgetbench` command line: thin click commands over harness functions.

One module per command group, each command a few lines over a library call: `tasks` (tasks,
new-method), `running` (run, suite run, jobs), `submitting` (submit, verify), `results` (runs,
show, compare, export, import), `scoring` (regress, suite score), `publishing` (site build), `db`
(db upgrade), `hardware` (machine, collectives). They share `options` (click options, filters,
exit codes) and `output` (JSON forms, one-line notes); `report` prints the tables and progress.
This module holds the group, registers the commands and turns errors into exit codes in `main`.

Exit codes: 0 ok, 1 a run or check failed, 2 bad usage or input, 130 interrupted. Errors print
one line; `--debug` shows tracebacks. Heavy imports (torch, SQLAlchemy, tasks) happen inside the
commands so `budgetbench --help` stays fast.
"""

from __future__ import annotations

import sys

import click

from harness import __version__
from harness.cli import db, hardware, publishing, results, running, scoring, submitting, tasks
from harness.cli.options import EXIT_FAILED, EXIT_INPUT, EXIT_INTERRUPTED

_debug = False


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


@cli.group("suite")
def suite_group() -> None:
    """Run the whole suite."""


suite_group.add_command(running.suite_run_command)
suite_group.add_command(scoring.suite_score_command)
for command in (
    tasks.tasks_command,
    tasks.new_method_command,
    running.run_command,
    running.jobs_command,
    submitting.submit_command,
    submitting.verify_command,
    results.runs_command,
    results.show_command,
    results.compare_command,
    results.export_command,
    results.import_command,
    scoring.regress_command,
    publishing.site_group,
    db.db_group,
    hardware.machine_command,
    hardware.collectives_command,
):
    cli.add_command(command)


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
        from harness.run.runner import Interrupted

        if isinstance(exc, Interrupted):
            click.echo("budgetbench: terminated", err=True)
            sys.exit(EXIT_INTERRUPTED)
        raise
