"""What the commands print besides tables (those are in `harness.cli.report`): the JSON forms
of `--json`, and the one-line notes on stderr that several commands share."""

from __future__ import annotations

import json
from typing import Any

import click


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def print_outcomes_json(outcomes) -> None:
    """`run --json`, `suite run --json`: one object per run outcome (`RunRecord.outcome_json`)."""
    print_json([o.outcome_json() for o in outcomes])


def run_summary(run: dict[str, Any]) -> dict[str, Any]:
    """`runs --json`: a stored run's bundle form without its measurements, curves and artifacts."""
    return {k: v for k, v in run.items() if k not in ("measurements", "curve_points", "artifacts")}


def print_job_states(states, as_json: bool) -> None:
    """`jobs` and `run --executor slurm --wait`: each Slurm job, its state and its outcome."""
    if as_json:
        rows = [{**state.record.__dict__, "state": state.state} for state in states]
        print_json([{**row, "outcome": s.outcome} for row, s in zip(rows, states, strict=True)])
        return
    from harness.cli.report import print_jobs

    print_jobs(states)


def report_reaped(run_ids: list[str]) -> None:
    for run_id in run_ids:
        click.echo(
            f"marked run {run_id[:8]} failed: its process died without finishing it", err=True
        )


def note(line: str) -> None:
    """One line on stderr, beside the command's output."""
    click.echo(line, err=True)
