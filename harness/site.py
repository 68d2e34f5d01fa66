"""The static leaderboard site: reads the store (never runs tasks) and renders Jinja templates.

Pages: index, one leaderboard per task/profile/spec (with JSON and CSV downloads), a page per
method, run (with its raw JSON) and machine (with history plots), regressions, a methodology
page per task, the suite score, and a page per submission from `results/` (its enclosed source,
runs and verification report; see `results_store`). Links are relative, so the site works from
`file://` and any static host. Templates autoescape: every string from a bundle or a method is
rendered as text.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import inspect
import io
import json
import math
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from harness import __version__
from harness.bundles import (
    import_validated,
    machine_to_dict,
    read_bundle,
    run_to_dict,
    validate_bundle,
)
from harness.errors import InputError
from harness.leaderboard import Leaderboard, MetricColumn, PaperReference, build_leaderboards
from harness.paths import site_root
from harness.plots import Line, line_plot_svg
from harness.scoring import OLYMPIC_MIN_SEEDS, TAU_MAX, SuiteScore, suite_scores
from harness.store import Store
from harness.store.models import Machine, Run

SITE_MARKER = ".budgetbench-site"


@dataclass(frozen=True)
class TaskInfo:
    """What the site shows about a task: from its class and the suite spec, if installed."""

    name: str
    description: str
    methodology: str
    metrics: list[MetricColumn]
    interface: list[tuple[str, str]]
    profiles: dict[str, dict[str, Any]]
    spec_description: str
    required_seeds: dict[str, int] = field(default_factory=dict)
    tolerances: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class PublishedSubmission:
    """A submission under `results/` as the site shows it, with its verification status."""

    slug: str
    relative_path: str
    data: dict[str, Any]
    report: dict[str, Any] | None
    status: str
    """verified (accepted after a re-run), checked (accepted, no re-run), rejected, pending (no
    report yet) or stale (the report is of another version of the file)."""
    run_ids: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return self.status in ("verified", "checked")

    def matches(self, task: str, spec_hash: str, method_hash: str, hardware_key: str) -> bool:
        machine = next(
            (m for m in self.data["bundle"]["machines"] if m["id"] == self.data["machine_id"]), {}
        )
        data = self.data
        stated = (data["task"], data["task_spec_hash"], data["method"]["method_hash"])
        wanted = (task, spec_hash, method_hash)
        return stated == wanted and machine.get("hardware_key") == hardware_key


@dataclass(frozen=True)
class SiteSummary:
    out: Path
    pages: int
    runs: int
    machines: int
    leaderboards: int


def _task_infos(task_names: Iterable[str]) -> tuple[dict[str, TaskInfo], dict, dict]:
    """Task metadata, standard spec hashes and paper references for the tasks in the store."""
    from harness.registry import load_task
    from harness.registry import task_names as installed
    from harness.spec import load_spec, resolve_config

    infos: dict[str, TaskInfo] = {}
    standard_hashes: dict[tuple[str, str], str] = {}
    references: dict[str, list[PaperReference]] = {}
    available = set(installed())
    for name in sorted(set(task_names) | available):
        if name not in available:
            continue
        task_cls = load_task(name)
        try:
            spec = load_spec(name)
        except InputError:
            continue
        for profile in spec.profiles:
            standard_hashes[(name, profile)] = resolve_config(
                task_cls, spec, profile
            ).task_spec_hash
        references[name] = [
            PaperReference(
                name=str(ref["name"]),
                source=str(ref.get("source", "")),
                metrics={k: float(v) for k, v in ref.get("metrics", {}).items()},
                note=str(ref.get("note", "")),
            )
            for ref in spec.references
        ]
        module = sys.modules[task_cls.__module__]
        infos[name] = TaskInfo(
            name=name,
            description=task_cls.description,
            # The module docstring without its title line, which the page's heading replaces.
            methodology=(inspect.getdoc(module) or "").partition("\n\n")[2],
            metrics=_columns(task_cls),
            interface=[(f.signature, f.doc) for f in task_cls.method_interface],
            profiles=spec.profiles,
            spec_description=spec.description,
            required_seeds={profile: spec.seeds_required(profile) for profile in spec.profiles},
            tolerances=spec.tolerances,
        )
    return infos, standard_hashes, references


def _columns(task_cls) -> list[MetricColumn]:
    """The task's scalar metrics, headline ones first in the task's order, then the rest."""
    headline = list(task_cls.headline_metrics) or [m.name for m in task_cls.metrics]
    scalars = {m.name: m for m in task_cls.metrics if not m.is_curve}
    ordered = [scalars[name] for name in headline if name in scalars]
    ordered += [m for m in scalars.values() if m.name not in headline]
    return [
        MetricColumn(m.name, m.unit, m.higher_is_better, m.description, headline=m.name in headline)
        for m in ordered
    ]


def _environment():
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    environment = Environment(
        loader=FileSystemLoader(site_root() / "templates"),
        autoescape=select_autoescape(["html", "atom"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["number"] = _number
    environment.filters["when"] = _when
    environment.tests["infinite"] = lambda value: isinstance(value, float) and math.isinf(value)
    return environment


def _number(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.4g}"


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "–"
    return moment.strftime("%Y-%m-%d %H:%M UTC")


class _Writer:
    """Writes pages under the output directory and counts them."""

    def __init__(self, root: Path, environment) -> None:
        self.root = root
        self.environment = environment
        self.pages = 0

    def page(self, path: str, template: str, **context: Any) -> None:
        depth = path.count("/")
        html = self.environment.get_template(template).render(
            root="../" * depth, version=__version__, **context
        )
        self.text(path, html)
        self.pages += 1

    def text(self, path: str, content: str) -> None:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)


@contextlib.contextmanager
def results_store(
    results_dir: Path | None,
) -> Iterator[tuple[Store | None, list[PublishedSubmission]]]:
    """A temporary store holding everything under `results_dir`, and its submissions.

    `results/<task>/<profile>/<name>.submission.json` are submissions (their runs are imported;
    `<name>.verification.json` beside each is its report); other `*.json` files directly in
    `results_dir` are plain bundles. All are validated first and imported all or nothing.
    Yields (None, []) without a directory, so callers fall back to their database.
    """
    if results_dir is None:
        yield None, []
        return
    from harness.store import open_store
    from harness.submissions import REPORT_SUFFIX, SUFFIX, read_submission, submission_files

    if not results_dir.is_dir():
        raise InputError(f"{results_dir} is not a directory")
    bundles = [
        (path, read_bundle(path))
        for path in sorted(results_dir.glob("*.json"))
        if not path.name.endswith((SUFFIX, REPORT_SUFFIX))
    ]
    published = []
    for path in submission_files(results_dir):
        submission = read_submission(path)
        bundles.append((path, validate_bundle(submission.bundle, path)))
        published.append(_published(results_dir, submission))
    with tempfile.TemporaryDirectory(prefix="budgetbench-results-") as scratch:
        store = open_store(str(Path(scratch) / "results.db"))
        try:
            import_validated(store, bundles)
            yield store, published
        finally:
            store.dispose()


def _published(results_dir: Path, submission) -> PublishedSubmission:
    from harness.signatures import ALLOWED_SIGNERS, signed_by
    from harness.statuses import report_status
    from harness.submissions import report_path
    from harness.verify import read_report

    relative = submission.path.relative_to(results_dir).as_posix()
    report = read_report(report_path(submission.path))
    # Above *checked* only from a report an allowed signer signed, once the results name any.
    signers = results_dir / ALLOWED_SIGNERS
    signed = report is not None and signed_by(report, signers) is not None
    status = report_status(report, submission.data, signed, signers.is_file())
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", relative.removesuffix(".submission.json"))
    return PublishedSubmission(
        slug=slug,
        relative_path=relative,
        data=submission.data,
        report=report,
        status=status,
        run_ids=[run["id"] for run in submission.runs],
    )


def _finished_runs(session) -> list[Run]:
    return list(
        session.scalars(
            select(Run)
            .where(Run.status != "running")
            .order_by(Run.started_at, Run.id)
            .options(
                selectinload(Run.measurements),
                selectinload(Run.curve_points),
                selectinload(Run.artifacts),
                selectinload(Run.machine),
            )
        )
    )


def _leaderboards(runs: list[Run]) -> tuple[list[Leaderboard], dict[str, TaskInfo]]:
    infos, standard_hashes, references = _task_infos({run.task for run in runs})
    boards = build_leaderboards(
        runs,
        {name: info.metrics for name, info in infos.items()},
        standard_hashes,
        references,
    )
    return boards, infos


def compute_suite_scores(
    store: Store, profile: str, suite_version: str | None = None
) -> tuple[list[SuiteScore], list[str]]:
    """The suite score per machine over the suite's tasks (see `harness.scoring`)."""
    with store.session() as session:
        runs = _finished_runs(session)
    boards, _infos = _leaderboards(runs)
    return _suite_scores(boards, profile, suite_version)


def _suite_scores(
    boards: list[Leaderboard], profile: str, suite_version: str | None
) -> tuple[list[SuiteScore], list[str]]:
    from harness.registry import load_task, task_names
    from harness.spec import latest_suite_version, spec_task_names

    version = suite_version or latest_suite_version()
    installed = set(task_names())
    tasks = [name for name in spec_task_names(version) if name in installed]
    references = {name: load_task(name).reference_methods[0] for name in tasks}
    suite_boards = [b for b in boards if b.suite_version == version]
    return suite_scores(suite_boards, profile, tasks, references), tasks


def build_site(
    store: Store, out: Path, submissions: list[PublishedSubmission] | None = None
) -> SiteSummary:
    """Render the whole site into `out`, replacing a previous build there."""
    from harness.regressions import find_changes

    _check_output_directory(out)
    with store.session() as session:
        changes = find_changes(session)
        runs = _finished_runs(session)
        machines = list(session.scalars(select(Machine).order_by(Machine.first_seen_at)))
    boards, infos = _leaderboards(runs)
    staging = Path(tempfile.mkdtemp(prefix=".site-", dir=out.parent))
    try:
        writer = _Writer(staging, _environment())
        shutil.copytree(site_root() / "static", staging / "static")
        _render(writer, runs, machines, boards, infos, changes, submissions or [])
        (staging / SITE_MARKER).write_text(f"built by budgetbench {__version__}\n")
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return SiteSummary(out, writer.pages, len(runs), len(machines), len(boards))


def _check_output_directory(out: Path) -> None:
    """Refuse to replace a directory that is not an earlier site build (or empty)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists() and (
        not out.is_dir() or (any(out.iterdir()) and not (out / SITE_MARKER).exists())
    ):
        raise InputError(f"{out} exists and is not a budgetbench site: refusing to replace it")


def _render(
    writer: _Writer,
    runs,
    machines,
    boards: list[Leaderboard],
    infos,
    changes,
    submissions: list[PublishedSubmission],
) -> None:
    last_updated = max((r.finished_at or r.started_at for r in runs), default=None)
    tasks = sorted({board.task for board in boards} | set(infos))
    boards_by_task = {task: [b for b in boards if b.task == task] for task in tasks}
    hardware = _latest_machines(machines)
    writer.page(
        "index.html",
        "index.html",
        title="budgetbench",
        tasks=tasks,
        infos=infos,
        boards_by_task=boards_by_task,
        last_updated=last_updated,
        run_count=len(runs),
        machines=hardware,
        regression_count=sum(1 for c in changes if c.is_regression),
        suite_versions=sorted(
            {board.suite_version for board in boards if board.suite_version != "external"}
        ),
        submissions=submissions,
    )
    _render_suite_score(writer, boards)
    _render_submissions(writer, submissions)
    for board in boards:
        base = f"tasks/{board.task}/{board.slug}"
        records = [row.as_record(board.columns) for row in board.rows]
        writer.text(f"{base}.json", json.dumps(records, indent=1, default=str) + "\n")
        writer.text(f"{base}.csv", _csv(records))
        writer.page(
            f"{base}.html",
            "leaderboard.html",
            title=f"{board.task} · {board.profile}",
            board=board,
            siblings=boards_by_task[board.task],
            info=infos.get(board.task),
            csv_name=f"{board.slug}.csv",
            json_name=f"{board.slug}.json",
            row_submissions={
                (row.method_hash, row.hardware_key): [
                    sub
                    for sub in submissions
                    if sub.matches(
                        board.task, board.task_spec_hash, row.method_hash, row.hardware_key
                    )
                ]
                for row in board.rows
            },
        )
    for task in tasks:
        if task in infos:
            writer.page(
                f"tasks/{task}/methodology.html",
                "methodology.html",
                title=f"{task} · methodology",
                info=infos[task],
                boards=boards_by_task[task],
            )
    _render_methods(writer, runs, submissions)
    _render_runs(writer, runs)
    _render_machines(writer, runs, machines, hardware, changes)
    labels = {key: machine.hardware_label for key, machine in hardware.items()}
    records = [_change_record(change) for change in changes]
    writer.text("regressions.json", json.dumps(records, indent=1) + "\n")
    writer.text("regressions.csv", _csv(records))
    writer.page("regressions.html", "regressions.html", title="Regressions", changes=changes,
                machine_labels=labels)  # fmt: skip
    writer.text(
        "regressions.atom",
        writer.environment.get_template("regressions.atom").render(
            changes=changes,
            machine_labels=labels,
            updated=_when_iso(last_updated),
            version=__version__,
        ),
    )


def _render_suite_score(writer: _Writer, boards: list[Leaderboard]) -> None:
    """One section per profile that has standard boards: the scores per machine."""
    profiles = sorted({b.profile for b in boards if b.is_standard}, key=_profile_key)
    sections = []
    for profile in profiles:
        scores, tasks = _suite_scores(boards, profile, None)
        if scores:
            sections.append((profile, tasks, scores))
    writer.page(
        "suite.html",
        "suite.html",
        title="Suite score",
        sections=sections,
        tau_max=TAU_MAX,
        olympic_min_seeds=OLYMPIC_MIN_SEEDS,
    )


def _profile_key(profile: str) -> tuple[int, str]:
    return ({"smoke": 0, "standard": 1, "full": 2}.get(profile, 3), profile)


def _render_submissions(writer: _Writer, submissions: list[PublishedSubmission]) -> None:
    for submission in submissions:
        base = f"submissions/{submission.slug}"
        writer.text(f"{base}.json", json.dumps(submission.data, indent=1, sort_keys=True) + "\n")
        if submission.report is not None:
            writer.text(
                f"{base}.verification.json",
                json.dumps(submission.report, indent=1, sort_keys=True) + "\n",
            )
        writer.page(
            f"{base}.html",
            "submission.html",
            title=f"submission {submission.data['method']['name']}",
            submission=submission,
        )


def _change_record(change) -> dict[str, Any]:
    """A flat record of a detected change for the JSON and CSV downloads."""
    record = dataclasses.asdict(change)
    record["at"] = change.at.isoformat()
    record["runs_before"] = " ".join(change.runs_before)
    record["runs_after"] = " ".join(change.runs_after)
    record["software_diff"] = "; ".join(
        f"{name} {before} -> {after}"
        for name, (before, after) in sorted(change.software_diff.items())
    )
    return record


def _when_iso(moment: datetime | None) -> str:
    return (moment or datetime.now(timezone.utc)).isoformat()


def _csv(records: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    if records:
        writer = csv.DictWriter(buffer, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    return buffer.getvalue()


def _latest_machines(machines: list[Machine]) -> dict[str, Machine]:
    """The newest fingerprint of each hardware key."""
    latest: dict[str, Machine] = {}
    for machine in machines:
        latest[machine.hardware_key] = machine
    return latest


def _render_methods(
    writer: _Writer, runs: list[Run], submissions: list[PublishedSubmission]
) -> None:
    by_method: dict[str, list[Run]] = {}
    for run in runs:
        by_method.setdefault(run.method_hash, []).append(run)
    for method_hash, method_runs in by_method.items():
        latest = method_runs[-1]
        writer.page(
            f"methods/{method_hash[:16]}.html",
            "method.html",
            title=f"method {latest.method_name}",
            method=latest,
            runs=list(reversed(method_runs)),
            submissions=[
                sub for sub in submissions if sub.data["method"]["method_hash"] == method_hash
            ],
        )


def _render_runs(writer: _Writer, runs: list[Run]) -> None:
    for run in runs:
        record = {**run_to_dict(run), "machine": machine_to_dict(run.machine)}
        writer.text(f"runs/{run.id}.json", json.dumps(record, indent=1, sort_keys=True) + "\n")
        curves: dict[str, list] = {}
        for point in run.curve_points:
            curves.setdefault(point.metric, []).append(point)
        plots = {}
        for metric, points in curves.items():
            line = Line(metric, [p.x for p in points], [p.value for p in points])
            plots[metric] = line_plot_svg(
                [line], title=metric, x_label=points[0].x_unit, y_label=points[0].unit
            )
            writer.text(f"runs/{run.id}-{metric}.svg", plots[metric])
        writer.page(
            f"runs/{run.id}.html",
            "run.html",
            title=f"run {run.id[:8]}",
            run=run,
            curves=sorted(curves),
            error_summary=(run.error or "").split("\n\n", 1)[0],
        )


def _render_machines(
    writer: _Writer,
    runs: list[Run],
    machines: list[Machine],
    latest: dict[str, Machine],
    changes,
) -> None:
    for hardware_key, machine in latest.items():
        machine_runs = [r for r in runs if r.hardware_key == hardware_key]
        software = [m for m in machines if m.hardware_key == hardware_key]
        plots = _history_plots(machine_runs)
        for slug, svg in plots.items():
            writer.text(f"machines/{hardware_key}-{slug}.svg", svg)
        writer.page(
            f"machines/{hardware_key}.html",
            "machine.html",
            title=machine.hardware_label,
            machine=machine,
            software_versions=software,
            plots=sorted(plots),
            runs=list(reversed(machine_runs))[:200],
            changes=[c for c in changes if c.hardware_key == hardware_key],
        )


MAX_PLOTS_PER_MACHINE = 60


def _history_plots(runs: list[Run]) -> dict[str, str]:
    """One SVG per (task, profile, metric) with two or more points, a line per method."""
    series: dict[tuple[str, str, str, str], dict[str, list[tuple[datetime, float]]]] = {}
    for run in runs:
        if run.status != "succeeded":
            continue
        for measurement in run.measurements:
            key = (run.task, run.profile, measurement.name, measurement.unit)
            points = series.setdefault(key, {}).setdefault(run.method_name, [])
            points.append((run.started_at, measurement.value))
    plots = {}
    for (task, profile, metric, unit), by_method in sorted(series.items()):
        if max(len(points) for points in by_method.values()) < 2:
            continue
        if len(plots) == MAX_PLOTS_PER_MACHINE:
            break
        lines = [
            Line(method, [x for x, _ in points], [y for _, y in points])
            for method, points in sorted(by_method.items())
        ]
        title = f"{task} · {profile} · {metric}"
        plots[f"{task}-{profile}-{metric}"] = line_plot_svg(
            lines, title=title, x_label="run started (UTC)", y_label=unit
        )
    return plots
