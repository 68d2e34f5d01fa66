"""Human output: rich tables and progress bars for the CLI (the JSON forms come from bundles).

In a terminal: live progress bars and tables that fit its width. Anywhere else (a CI log, a
pipe, cron mail): plain progress lines at most every `PLAIN_PROGRESS_EVERY_S` (what, how far,
elapsed) and tables at their full width, never cut to 80 columns with `…` (COLUMNS, if set, still
decides).
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from harness.registry import task_report_lines
from harness.run.recorder import Tracker
from harness.score.rules import aggregate_seeds, seed_rule
from harness.store.records import RunRecord

# Markup is off: names, errors and settings come from users and bundles and must print as typed
# (a method called "[bold]x" stays "[bold]x"). Colour is applied through Text styles instead.
PLAIN_PROGRESS_EVERY_S = 15.0
LOG_WIDTH = 400
"""Off a terminal, tables get this many columns: wide enough for every table the CLI prints."""


def _console(stderr: bool = False) -> Console:
    console = Console(stderr=stderr, markup=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(stderr=stderr, markup=False, width=LOG_WIDTH)
    return console


console = _console()
error_console = _console(stderr=True)


class PlainProgress:
    """Progress for logs: every `every_s` seconds while work goes on, one line with what is
    being done (the run, `doing`, and the loop it is in, `track`), how far it is and the time
    elapsed on that run; silent before anything is doing or tracked."""

    def __init__(self, write: Callable[[str], None], every_s: float = PLAIN_PROGRESS_EVERY_S):
        self._write = write
        self._every_s = every_s
        self._label: str | None = None
        self._started = time.monotonic()
        self._current: tuple[str, int, int | None] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._report, daemon=True)

    def __enter__(self) -> PlainProgress:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def doing(self, label: str) -> None:
        """A new piece of work (a run) starts: lines name it, elapsed time counts from now."""
        self._label, self._started, self._current = label, time.monotonic(), None

    def track(self, items: Iterable[Any], description: str, total: int | None) -> Iterable[Any]:
        if total is None and hasattr(items, "__len__"):
            total = len(items)  # type: ignore[arg-type]
        self._current = (description, 0, total)
        for done, item in enumerate(items, start=1):
            yield item
            self._current = (description, done, total)

    def line(self) -> str | None:
        if self._label is None and self._current is None:
            return None
        parts = [self._label] if self._label else []
        if self._current is not None:
            description, done, total = self._current
            parts.append(f"{description} {done}/{total}" if total else f"{description} {done}")
        else:
            parts.append("running")
        elapsed = time.monotonic() - self._started
        return f"  … {': '.join(parts)} ({elapsed:.0f} s elapsed)"

    def _report(self) -> None:
        while not self._stop.wait(self._every_s):
            line = self.line()
            if line is not None:
                self._write(line)


_active_plain: PlainProgress | None = None


def now_running(label: str) -> None:
    """Name the run that starts now in the plain progress lines (no-op in a terminal)."""
    if _active_plain is not None:
        _active_plain.doing(label)


def _print_plain(line: str) -> None:
    error_console.print(line, highlight=False, soft_wrap=True)


@contextmanager
def progress_tracker(enabled: bool = True) -> Iterator[Tracker | None]:
    """A progress display on stderr for long work; yields the tracker tasks call via ctx.track.
    Live bars in a terminal, `PlainProgress` lines anywhere else."""
    if not enabled:
        yield None
        return
    if not error_console.is_terminal:
        global _active_plain
        with PlainProgress(_print_plain) as plain:
            _active_plain = plain
            try:
                yield plain.track
            finally:
                _active_plain = None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=error_console,
        transient=True,
        redirect_stdout=False,  # third-party output goes to the run's log (harness.cli.capture)
        redirect_stderr=False,
    ) as progress:

        def track(items: Iterable[Any], description: str, total: int | None) -> Iterable[Any]:
            return progress.track(items, total=total, description=description)

        yield track


def _short(run_id: str) -> str:
    return run_id[:8]


def _status(status: str, gate_passed: bool | None) -> Text:
    colour = {"succeeded": "green", "failed": "red", "running": "yellow"}.get(status, "magenta")
    gate = " (gate missed)" if gate_passed is False else ""
    return Text.assemble((status, colour), gate)


def _number(value: float) -> str:
    return f"{value:.4g}"


def print_outcome_line(outcome: RunRecord) -> None:
    marks = {"succeeded": ("✓", "green"), "skipped": ("↷", "cyan")}
    mark = marks.get(outcome.status, ("✗", "red"))
    done = f"{outcome.status} in {outcome.wall_s or 0.0:.1f} s"
    if outcome.status == "skipped":
        done = "skipped: already stored as"
    line = (
        f" {outcome.task} / {outcome.method_name} / {outcome.profile} / seed {outcome.seed}:"
        f" {done}  run {_short(outcome.run_id)}"
    )
    # soft_wrap: a long line wraps in a terminal and is never cut in a log (the run id is last)
    error_console.print(Text.assemble(mark, line), highlight=False, soft_wrap=True)
    if outcome.error:
        error_console.print(
            Text("  " + outcome.error.splitlines()[0], style="red"),
            highlight=False,
            soft_wrap=True,
        )


def print_outcomes(outcomes: list[RunRecord]) -> None:
    """A table of runs, then each (task, method, profile)'s measurements aggregated over seeds
    (`harness.score.rules`: median, olympic mean from five seeds)."""
    table = Table(title="Runs", title_justify="left")
    for column in ("run", "task", "method", "profile", "seed", "status", "wall s"):
        table.add_column(column)
    groups: dict[tuple[str, str, str], list[RunRecord]] = {}
    for outcome in outcomes:
        table.add_row(
            _short(outcome.run_id),
            outcome.task,
            outcome.method_name,
            outcome.profile,
            str(outcome.seed),
            _status(outcome.status, outcome.gate_passed),
            f"{outcome.wall_s or 0.0:.1f}",
        )
        groups.setdefault((outcome.task, outcome.method_name, outcome.profile), []).append(outcome)
    console.print(table)
    for (task, method, profile), members in groups.items():
        values: dict[str, list[float]] = {}
        units: dict[str, str] = {}
        for outcome in members:
            for name, (value, unit) in outcome.scalars.items():
                values.setdefault(name, []).append(value)
                units[name] = unit
        if not values:
            continue
        detail = Table(title=f"{task} / {method} / {profile}", title_justify="left")
        for column in ("metric", "over seeds", "rule", "unit", "seeds"):
            detail.add_column(column)
        for name, numbers in values.items():
            detail.add_row(
                name,
                _number(aggregate_seeds(numbers)),
                seed_rule(len(numbers)),
                units[name],
                str(len(numbers)),
            )
        console.print(detail)


def print_jobs(states) -> None:
    """Submitted Slurm jobs (executors.slurm.JobState): state and, once done, the run."""
    if not states:
        console.print("no jobs submitted (see --executor slurm)")
        return
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True, show_edge=False)
    for column in ("job", "state", "task", "method", "profile", "seed", "run", "status"):
        table.add_column(column)
    for state in states:
        record, outcome = state.record, state.outcome or {}
        table.add_row(
            record.job_id,
            state.state,
            record.task,
            record.method or "",
            record.profile,
            str(record.seed),
            _short(outcome.get("run_id") or ""),
            _status(outcome["status"], outcome.get("gate_passed")) if outcome else "",
        )
    console.print(table)


def print_runs(runs: list[RunRecord]) -> None:
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), collapse_padding=True, show_edge=False)
    for column in (
        "run",
        "started UTC",
        "task",
        "method",
        "profile",
        "seed",
        "status",
        "wall s",
        "machine",
    ):
        table.add_column(column, no_wrap=column in ("run", "started UTC", "status", "machine"))
    for run in runs:
        table.add_row(
            _short(run.id),
            run.started_at.strftime("%m-%d %H:%M"),
            run.task,
            run.method_name,
            run.profile,
            str(run.seed),
            _status(run.status, run.gate_passed),
            f"{run.wall_s:.1f}" if run.wall_s is not None else "-",
            run.hardware_key[:8],
        )
    console.print(table)
    if not runs:
        console.print("no runs match")


def print_run(run: RunRecord) -> None:
    reference = " reference" if run.is_reference_method else ""
    fields = [
        ("run", run.id),
        ("task", f"{run.task} (suite {run.suite_version}, spec v{run.spec_version})"),
        ("task-spec hash", run.task_spec_hash),
        ("method", f"{run.method_name}{reference} ({run.method_hash[:12]})"),
        ("profile / seed", f"{run.profile} / {run.seed}"),
        ("status", _status(run.status, run.gate_passed)),
        ("device", run.device),
        ("machine", run.machine.hardware_label),
        ("keys", f"hardware {run.hardware_key}, software {run.software_key}"),
        ("started", run.started_at.strftime("%Y-%m-%d %H:%M:%S UTC")),
        ("wall / timed", f"{_seconds(run.wall_s)} / {_seconds(run.timed_s)}"),
        ("settings", _pairs(run.settings)),
        ("hyperparameters", _pairs(run.hyperparameters)),
    ]
    if run.gate_reason:
        fields.append(("quality gate", run.gate_reason))
    isolation = (run.provenance or {}).get("task_notes", {}).get("sandbox_isolation")
    if isolation:  # how confined the run's untrusted programs were (verifiers)
        fields.append(("sandbox", str(isolation)))
    if run.error:
        fields.append(("error", run.error.splitlines()[0]))
    header = Table.grid(padding=(0, 2))
    header.add_column(style="bold")
    header.add_column()
    for name, value in fields:
        header.add_row(name, value)
    console.print(header)
    if run.measurements:
        table = Table(title="Measurements", title_justify="left")
        for column in ("metric", "value", "unit", "better", "repeats", "spread (min-max)"):
            table.add_column(column, overflow="fold")
        for m in run.measurements:
            samples = m.samples or []
            spread = f"{_number(min(samples))} - {_number(max(samples))}" if samples else "-"
            table.add_row(
                m.name, _number(m.value), m.unit, "higher" if m.higher_is_better else "lower",
                str(len(samples)) if samples else "-", spread,
            )  # fmt: skip
        console.print(table)
        _print_task_report(run)
    curves: dict[str, list[Any]] = {}
    for point in run.curve_points:
        curves.setdefault(point.metric, []).append(point)
    if curves:
        table = Table(title="Curves", title_justify="left")
        for column in ("metric", "points", "x range", "last value", "median value"):
            table.add_column(column, overflow="fold")
        for metric, points in curves.items():
            values = [p.value for p in points]
            x_range = f"{_number(points[0].x)} - {_number(points[-1].x)} {points[0].x_unit}"
            last = f"{_number(values[-1])} {points[0].unit}"
            median = _number(statistics.median(values))
            table.add_row(metric, str(len(points)), x_range, last, median)
        console.print(table)
        _print_sweeps(curves)
    if run.artifacts:
        table = Table(title="Files", title_justify="left")
        for column in ("artifact", "type", "size", "path"):
            table.add_column(column, overflow="fold")
        for artifact in run.artifacts:
            table.add_row(
                artifact.name, artifact.media_type, _bytes(artifact.size_bytes),
                _artifact_path(artifact.uri),
            )  # fmt: skip
        console.print(table)


def _print_task_report(run: RunRecord) -> None:
    """The task's own summary of the run's scalars (e.g. quant's llama.cpp-style table)."""
    lines = task_report_lines(run.task, {m.name: m.value for m in run.measurements})
    if lines:
        console.print(Text("\n".join(lines)))


MAX_SWEEP_POINTS = 16


def _print_sweeps(curves: dict[str, list[Any]]) -> None:
    """Short curves that share an x axis other than time or steps (batch size, samples k) as one
    table, a row per x: a sweep reads better across than as separate curve summaries."""
    by_axis: dict[str, list[str]] = {}
    for metric, points in curves.items():
        x_unit = points[0].x_unit
        if x_unit not in ("s", "steps", "step") and len(points) <= MAX_SWEEP_POINTS:
            by_axis.setdefault(x_unit, []).append(metric)
    for x_unit, metrics in by_axis.items():
        if len(metrics) < 2:
            continue
        values = {m: {p.x: p.value for p in curves[m]} for m in metrics}
        xs = sorted({x for series in values.values() for x in series})
        table = Table(title=f"Per {x_unit}", title_justify="left", collapse_padding=True)
        table.add_column(f"{x_unit} =", overflow="fold")
        for x in xs:
            table.add_column(_number(x), justify="right", no_wrap=True)
        for metric in metrics:
            row = [_number(values[metric][x]) if x in values[metric] else "-" for x in xs]
            table.add_row(metric, *row)
        console.print(table)


def _bytes(size: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{size:.0f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def _artifact_path(uri: str) -> str:
    """A local file's path (what a user can open), any other URI as it is."""
    from urllib.parse import unquote, urlparse

    parsed = urlparse(uri)
    return unquote(parsed.path) if parsed.scheme == "file" else uri


def _pairs(mapping: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in sorted(mapping.items())) or "-"


def _seconds(value: float | None) -> str:
    return f"{value:.2f} s" if value is not None else "-"


def print_fingerprint(fingerprint) -> None:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_row("hardware key", fingerprint.hardware_key)
    table.add_row("software key", fingerprint.software_key)
    table.add_row("machine", fingerprint.hardware_label)
    for section in ("hardware", "software"):
        for key, value in getattr(fingerprint, section).items():
            if key == "packages":
                value = ", ".join(f"{k} {v}" for k, v in value.items())
            elif key == "gpus":
                value = (
                    "; ".join(
                        f"{g['name']} {g['memory_gib']} GiB (sm {g['compute_capability']})"
                        for g in value
                    )
                    or "none"
                )
            table.add_row(key.replace("_", " "), str(value))
    console.print(table)


def _percent(value: float) -> str:
    return f"{value * 100:+.1f}%"


def print_changes(changes) -> None:
    """The steps `budgetbench regress` found, regressions first."""
    if not changes:
        console.print("no significant changes")
        return
    table = Table(title="Changes", title_justify="left")
    for column in ("kind", "when (UTC)", "machine", "task / profile", "method", "metric", "change",
                   "p", "software changed"):  # fmt: skip
        table.add_column(column, no_wrap=column in ("kind", "change"))
    for change in changes:
        kind = Text("regression", "red") if change.is_regression else Text("improvement", "green")
        software = "; ".join(
            f"{k} {b} -> {a}" for k, (b, a) in sorted(change.software_diff.items())
        )
        table.add_row(
            kind,
            change.at.strftime("%Y-%m-%d %H:%M"),
            change.hardware_key[:8],
            f"{change.task} / {change.profile}",
            change.method_name,
            change.metric,
            f"{_percent(change.relative_change)} ({_number(change.before_median)} -> "
            f"{_number(change.after_median)} {change.unit})",
            f"{change.p_value:.2g}",
            software or "-",
        )
    console.print(table)


def print_comparisons(comparisons) -> None:
    """`budgetbench compare`: B against A per metric."""
    table = Table(title="B against A", title_justify="left")
    for column in (
        "metric",
        "median A",
        "median B",
        "B / A",
        "95% interval",
        "p",
        "n A / B",
        "B is",
    ):
        table.add_column(column)
    for item in comparisons:
        c = item.comparison
        interval = f"{c.ci[0]:.4f} - {c.ci[1]:.4f}" if c.ci else "-"
        verdict = item.verdict
        style = {"better": "green", "worse": "red"}.get(verdict, "")
        table.add_row(
            f"{item.metric} ({item.unit}, {'higher' if item.higher_is_better else 'lower'} better)",
            _number(c.median_a),
            _number(c.median_b),
            f"{c.ratio:.4f}" if c.ratio is not None else "-",
            interval,
            f"{c.p_value:.2g}" if c.p_value is not None else "-",
            f"{c.n_a} / {c.n_b}",
            Text(verdict, style),
        )
    console.print(table)


def print_tasks(suite_version: str, rows: list[dict[str, Any]]) -> None:
    """`budgetbench tasks`: each task's reference methods, profiles and method interface."""
    table = Table(title=f"Tasks in suite {suite_version}", title_justify="left")
    for column in ("task", "reference methods", "profiles", "method interface", "description"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["task"],
            ", ".join(row["reference_methods"]),
            ", ".join(row["profiles"]) or "(not in this suite)",
            "\n".join(row["method_interface"]),
            row["description"],
        )
    console.print(table)


def print_verification(verification) -> None:
    """`budgetbench verify`: the verdict, every reason, warnings and the re-run comparison."""
    rerun = verification.rerun
    if verification.comparisons and rerun:
        table = Table(
            title=f"Re-run of seeds {rerun['seeds']} x{rerun['rounds']} on"
            f" {verification.verifier['hardware_label']} (runs in {rerun['store']})",
            title_justify="left",
        )
        for column in ("metric", "submitted", "re-run", "ratio (interval)", "band", ""):
            table.add_column(column)
        for c in verification.comparisons:
            log = c.scale == "log"
            table.add_row(
                c.metric,
                f"{_number(statistics.median(c.submitted))} {c.unit}",
                f"{_number(statistics.median(c.rerun))} {c.unit}",
                f"x{c.estimate:.3g} ({c.low:.3g}..{c.high:.3g})"
                if log
                else f"{c.estimate:+.1%} ({c.low:+.1%}..{c.high:+.1%})",
                f"x{1 / (1 + c.tolerance):.2f}..{1 + c.tolerance:.2f}"
                if log
                else f"+-{c.tolerance:.0%}",
                Text(c.verdict, {"agrees": "green", "disagrees": "red"}.get(c.verdict, "yellow")),
            )
        console.print(table)
    if rerun and rerun["hardware_difference"]:
        console.print("Hardware differs from the submission's: " + "; ".join(
            rerun["hardware_difference"]))  # fmt: skip
    for warning in verification.warnings:
        console.print(Text("warning: " + warning, style="yellow"))
    summary = (
        f"{verification.task}/{verification.profile} {verification.method_name}:"
        f" {len(verification.checks)} checks passed"
    )
    if verification.accepted:
        console.print(
            Text.assemble(("ACCEPTED", "green"), f" {summary}; status: {verification.status}")
        )
        return
    console.print(
        Text.assemble(("REJECTED", "red"), f" {summary}, {len(verification.reasons)} failed:")
    )
    for reason in verification.reasons:
        console.print(Text("  - " + reason, style="red"))


def print_suite_scores(scores, tasks: list[str], profile: str) -> None:
    """`budgetbench suite score`: per machine, each entry's profile score and speedup."""
    if not scores:
        console.print(f"no ranked results on the standard {profile} leaderboards yet")
        return
    for score in scores:
        table = Table(
            title=f"Suite score · {profile} · {score.hardware_label} ({score.hardware_key})",
            title_justify="left",
        )
        for column in ("entry", f"profile score (τ≤{score.tau_max:g})", "speedup (geomean)",
                       *tasks, "missing"):  # fmt: skip
            table.add_column(column)
        for entry in score.entries:
            table.add_row(
                entry.entry,
                f"{entry.profile_score:.3f}",
                _number(entry.geomean_speedup) + "x" if entry.geomean_speedup else "–",
                *(_ratio(entry.ratios[task]) for task in tasks),
                ", ".join(entry.tasks_missing) or "none",
            )
        console.print(table)
    console.print("Task columns: ratio to the best entry on that task (1 = best, ∞ = not ranked).")


def _ratio(value: float) -> str:
    return "∞" if value == float("inf") else f"{value:.3g}"


def print_collectives(results) -> None:
    """`budgetbench collectives`: nccl-tests' algbw and busbw per operation and size."""
    if not results:
        return
    first = results[0]
    table = Table(
        title=f"Collectives: {first.ranks} ranks, {first.backend} (GB/s = 1e9 bytes/s)",
        title_justify="left",
    )
    for column in ("operation", "size", "time us", "algbw GB/s", "busbw GB/s"):
        table.add_column(column, justify="left" if column == "operation" else "right")
    for result in results:
        table.add_row(
            result.operation,
            _bytes(result.size_bytes),
            f"{result.time_s * 1e6:.1f}",
            f"{result.algbw_gbps:.3f}",
            f"{result.busbw_gbps:.3f}",
        )
    console.print(table)


def _bytes(size: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} B"
