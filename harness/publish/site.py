"""The static leaderboard site: reads the store (never runs tasks) and renders Jinja templates.

Pages: index, one leaderboard per task/profile/spec (with JSON and CSV downloads), a page per
method, run (with its raw JSON) and machine (with history plots), regressions, a methodology
page per task, the suite score, and a page per submission from `results/` (its enclosed source,
runs and verification report; see `results_store`). Links are relative, so the site works from
`file://` and any static host. Templates autoescape: every string from a bundle or a method is
rendered as text.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import dataclasses
import functools
import inspect
import io
import itertools
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
from typing import TYPE_CHECKING, Any

from harness import __version__
from harness.errors import InputError
from harness.paths import SLUG_LIMIT, site_root, slug
from harness.publish.plots import Line, line_plot_svg
from harness.score.boards import (
    Leaderboard,
    MetricColumn,
    PaperReference,
    build_leaderboards,
    machine_details,
    machine_title,
    readable_name,
)
from harness.score.rules import OLYMPIC_MIN_SEEDS, TAU_MAX, SeedSummary, SuiteScore, suite_scores
from harness.store import Store
from harness.store.queries import all_machines, finished_runs
from harness.store.records import MachineRecord, RunRecord
from harness.submit.bundles import (
    import_validated,
    machine_to_dict,
    public_bundle,
    public_run_dict,
    read_artifact,
    read_bundle,
    run_to_dict,
    validate_bundle,
)

if TYPE_CHECKING:
    from markupsafe import Markup

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
        finalize=_printable,
    )
    environment.filters["number"] = _number
    environment.filters["when"] = _when
    environment.filters["when_short"] = lambda moment: (
        moment.strftime("%Y-%m-%d") if moment else "–"
    )
    environment.filters["machine_title"] = machine_title
    environment.filters["duration"] = _duration
    environment.filters["iso_when"] = _iso_when
    environment.filters["markdown"] = markdown
    environment.filters["machine_details"] = machine_details
    environment.globals.update(
        run_path=run_path,
        method_path=method_path,
        machine_path=machine_path,
        board_path=board_path,
        methodology_path=methodology_path,
        submission_path=submission_path,
    )
    environment.tests["infinite"] = lambda value: isinstance(value, float) and math.isinf(value)
    return environment


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _printable(value: Any) -> Any:
    """Every printed string without control characters (a NUL in a name is an HTML parse
    error; the store keeps the name as it came)."""
    if not isinstance(value, str) or hasattr(value, "__html__"):  # Markup is already safe
        return value
    return _CONTROL.sub("\ufffd", value)


def markdown(text: str) -> Markup:
    """Docstring Markdown as HTML: CommonMark with raw HTML off (a `<script>` in a docstring is
    shown as text) and markdown-it's link check (no `javascript:` or `data:` links)."""
    from markdown_it import MarkdownIt
    from markupsafe import Markup

    renderer = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    return Markup(renderer.render(text))


def _number(value: float | None) -> str:
    if value is None:
        return "–"
    if 1e4 <= abs(value) < 1e12:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def _iso_when(text: str | None) -> str:
    """An ISO time from a file, shown like every other time (the text itself if unparsable)."""
    try:
        return _when(datetime.fromisoformat(text).astimezone(timezone.utc)) if text else "–"
    except (TypeError, ValueError):
        return str(text)


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "–"
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def run_path(run_id: str, suffix: str = ".html") -> str:
    return f"runs/{slug(run_id)}{suffix}"


def method_path(method_hash: str) -> str:
    return f"methods/{slug(method_hash[:16])}.html"


def machine_path(hardware_key: str) -> str:
    return f"machines/{slug(hardware_key)}.html"


def board_path(board: Leaderboard, suffix: str = ".html") -> str:
    return f"tasks/{slug(board.task)}/{slug(board.slug)}{suffix}"


def methodology_path(task: str) -> str:
    return f"tasks/{slug(task)}/methodology.html"


def submission_path(submission: PublishedSubmission, suffix: str = ".html") -> str:
    return f"submissions/{submission.slug}{suffix}"


def _plot_path(directory: str, owner: str, name: str) -> str:
    return f"{directory}/{slug(owner)}-{slug(name)}.svg"


class _Writer:
    """Writes pages under the output directory and counts them.

    Every path is made by the `*_path` functions above from slugs; `text` checks once more that
    it stays under the output directory, so a crafted bundle can never write elsewhere."""

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
        self.bytes(path, content.encode("utf-8"))

    def bytes(self, path: str, content: bytes) -> None:
        target = self.root / path
        parts = Path(path).parts
        if (
            "\0" in path
            or Path(path).is_absolute()
            or any(part in ("", ".", "..") for part in parts)
            or not target.resolve().is_relative_to(self.root.resolve())
        ):
            raise InputError(f"refusing to write {path!r}: outside the site directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


@dataclass(frozen=True)
class RejectedFile:
    """A file under `results/` the site could not use, and why: listed, never fatal."""

    relative_path: str
    reason: str


@dataclass(frozen=True)
class PublishedResults:
    store: Store
    submissions: list[PublishedSubmission]
    rejected: list[RejectedFile]


@contextlib.contextmanager
def results_store(
    results_dir: Path | None,
) -> Iterator[tuple[Store | None, list[PublishedSubmission]]]:
    """`published_results` as (store, submissions); (None, []) without a directory, so callers
    fall back to their database."""
    if results_dir is None:
        yield None, []
        return
    with published_results(results_dir) as results:
        yield results.store, results.submissions


@contextlib.contextmanager
def published_results(results_dir: Path) -> Iterator[PublishedResults]:
    """A temporary store holding everything usable under `results_dir`, and its submissions.

    `results/<task>/<profile>/<name>.submission.json` are submissions (their runs are imported;
    `<name>.verification.json` beside each is its report); every other `*.json` file under
    `results_dir`, at any depth (`results/verifiers/<name>.json`), is a plain bundle. Each file
    is validated and imported on its own, in name order: a file that is invalid, conflicts with
    stored runs, or claims a run id another file already brought is rejected with its reason,
    and costs only itself.
    """
    from harness.store import open_store
    from harness.submit.submissions import REPORT_SUFFIX, SUFFIX, read_submission, submission_files

    if not results_dir.is_dir():
        raise InputError(f"{results_dir} is not a directory")
    bundles = sorted(
        path
        for path in results_dir.rglob("*.json")
        if not path.name.endswith((SUFFIX, REPORT_SUFFIX))
    )
    published: list[PublishedSubmission] = []
    rejected: list[RejectedFile] = []
    claimed: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="budgetbench-results-") as scratch:
        store = open_store(str(Path(scratch) / "results.db"))
        try:
            for path in [*bundles, *submission_files(results_dir)]:
                relative = path.relative_to(results_dir).as_posix()
                try:
                    if path.name.endswith(SUFFIX):
                        submission = read_submission(path)
                        bundle = validate_bundle(submission.bundle, path)
                    else:
                        submission, bundle = None, read_bundle(path)
                    _claim_runs(claimed, bundle, relative)
                    _import_one(store, path, bundle)
                    if submission is not None:
                        taken = {entry.slug for entry in published}
                        published.append(_published(results_dir, submission, taken))
                except InputError as exc:
                    reason = str(exc).removeprefix(f"{path}: ").removeprefix(f"{path}")
                    rejected.append(RejectedFile(relative, reason.strip(": ") or str(exc)))
            yield PublishedResults(store, published, rejected)
        finally:
            store.dispose()


def _claim_runs(claimed: dict[str, str], bundle: dict[str, Any], relative: str) -> None:
    """Every run belongs to one file: a second file with the same run id is rejected."""
    for run in bundle["runs"]:
        owner = claimed.get(run["id"])
        if owner is not None:
            raise InputError(f"run {run['id']} is already published by {owner}")
    for run in bundle["runs"]:
        claimed[run["id"]] = relative


def _import_one(store: Store, path: Path, bundle: dict[str, Any]) -> None:
    """Import one validated bundle in its own transaction; a database error rejects the file
    (`harness.store.runs.StoreRefused`, an InputError)."""
    import_validated(store, [(path, bundle)])


def _published(results_dir: Path, submission, taken: set[str]) -> PublishedSubmission:
    from harness.submit.signatures import ALLOWED_SIGNERS, signed_by
    from harness.submit.statuses import report_status
    from harness.submit.submissions import report_path
    from harness.submit.verify import read_report

    relative = submission.path.relative_to(results_dir).as_posix()
    report = read_report(report_path(submission.path))
    # Above *checked* only from a report an allowed signer signed, once the results name any.
    signers = results_dir / ALLOWED_SIGNERS
    signed = report is not None and signed_by(report, signers) is not None
    status = report_status(report, submission.data, signed, signers.is_file())
    return PublishedSubmission(
        slug=_submission_slug(relative, taken),
        relative_path=relative,
        data=submission.data,
        report=report,
        status=status,
        run_ids=[run["id"] for run in submission.runs],
    )


def _submission_slug(relative: str, taken: set[str]) -> str:
    """`probe/standard/eager-h100.submission.json` -> `probe-standard-eager-h100`: each folder
    slugged; a name another submission already has gets the hash of its whole path."""
    parts = relative.removesuffix(".submission.json").split("/")
    readable = "-".join(slug(part) for part in parts)
    if readable in taken or len(readable) > 2 * SLUG_LIMIT:
        return slug(relative)
    return readable


def _leaderboards(runs: list[RunRecord]) -> tuple[list[Leaderboard], dict[str, TaskInfo]]:
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
    """The suite score per machine over the suite's tasks (see `harness.score.rules`)."""
    with store.session() as session:
        runs = finished_runs(session)
    boards, _infos = _leaderboards(runs)
    return _suite_scores(boards, profile, suite_version)


def _suite_scores(
    boards: list[Leaderboard],
    profile: str,
    suite_version: str | None,
    reference_family: str | None = None,
) -> tuple[list[SuiteScore], list[str]]:
    from harness.registry import load_task, task_names
    from harness.spec import latest_suite_version, spec_task_names

    version = suite_version or latest_suite_version()
    installed = set(task_names())
    tasks = [name for name in spec_task_names(version) if name in installed]
    references = {name: reference_family or load_task(name).reference_methods[0] for name in tasks}
    suite_boards = [_latest_software(b) for b in boards if b.suite_version == version]
    return suite_scores(suite_boards, profile, tasks, references), tasks


def _latest_software(board: Leaderboard) -> Leaderboard:
    """The board with one row per method and machine (its newest software configuration): the
    suite score compares methods, not software versions of one method."""
    newest: dict[tuple[str, str], Any] = {}
    for row in board.rows:
        key = (row.method_hash, row.hardware_key)
        if key not in newest or (row.last_run_at or datetime.min.replace(tzinfo=timezone.utc)) > (
            newest[key].last_run_at or datetime.min.replace(tzinfo=timezone.utc)
        ):
            newest[key] = row
    kept = set(map(id, newest.values()))
    return dataclasses.replace(board, rows=[row for row in board.rows if id(row) in kept])


def build_site(
    store: Store,
    out: Path,
    submissions: list[PublishedSubmission] | None = None,
    rejected: list[RejectedFile] | None = None,
    include_private: bool = False,
) -> SiteSummary:
    """Render the whole site into `out`, replacing a previous build there.

    Pages and downloads carry runs in their public form (`public_run_dict`: no host, user,
    process, command line or directory paths) unless `include_private`."""
    from harness.score.regressions import find_changes

    _check_output_directory(out)
    with store.session() as session:
        changes = find_changes(session)
        runs = finished_runs(session)
        machines = all_machines(session)
    boards, infos = _leaderboards(runs)
    staging = Path(tempfile.mkdtemp(prefix=".site-", dir=out.parent))
    try:
        writer = _Writer(staging, _environment())
        shutil.copytree(site_root() / "static", staging / "static")
        _render(
            writer, runs, machines, boards, infos, changes, submissions or [], rejected or [],
            include_private,
        )  # fmt: skip
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
    rejected: list[RejectedFile],
    include_private: bool,
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
        rejected=rejected,
    )
    _render_suite_score(writer, boards, submissions)
    _render_submissions(writer, submissions, include_private, infos)
    for board in boards:
        records = [row.as_record(board.columns) for row in board.rows]
        writer.text(board_path(board, ".json"), json.dumps(records, indent=1, default=str) + "\n")
        writer.text(board_path(board, ".csv"), _csv(records))
        writer.page(
            board_path(board),
            "leaderboard.html",
            title=f"{board.task} · {board.profile}",
            board=board,
            siblings=boards_by_task[board.task],
            info=infos.get(board.task),
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
                methodology_path(task),
                "methodology.html",
                title=f"{task} · methodology",
                info=infos[task],
                boards=boards_by_task[task],
            )
    _render_methods(writer, runs, submissions, include_private)
    _render_runs(writer, runs, include_private, infos)
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


REFERENCE_FAMILY = "reference methods"


def _render_suite_score(
    writer: _Writer, boards: list[Leaderboard], submissions: list[PublishedSubmission]
) -> None:
    """One section per profile with standard boards. An entry is a method family across tasks:
    the accepted submissions that declare one `--suite-entry` name, or the tasks' reference
    methods together. Only entries that cover every task of the suite get a score; the others
    are listed with the tasks they miss, so an empty table says why it is empty."""
    from harness.registry import load_task

    families = {
        (s.data["task"], s.data["method"]["method_hash"], _hardware_key(s)): s.data["suite_entry"]
        for s in submissions
        if s.accepted and s.data.get("suite_entry")
    }
    profiles = sorted({b.profile for b in boards if b.is_standard}, key=_profile_key)
    sections = []
    for profile in profiles:
        reference = {b.task: load_task(b.task).reference_methods[0] for b in boards
                     if b.task in _installed_tasks()}  # fmt: skip
        family_boards = [_family_board(b, families, reference) for b in boards]
        scores, tasks = _suite_scores(family_boards, profile, None, REFERENCE_FAMILY)
        complete = [
            dataclasses.replace(score, entries=[e for e in score.entries if not e.tasks_missing])
            for score in scores
        ]
        partial = [
            (score, entry) for score in scores for entry in score.entries if entry.tasks_missing
        ]
        sections.append((profile, tasks, [c for c in complete if c.entries], partial))
    writer.page(
        "suite.html",
        "suite.html",
        title="Suite score",
        sections=sections,
        tau_max=TAU_MAX,
        olympic_min_seeds=OLYMPIC_MIN_SEEDS,
        reference_family=REFERENCE_FAMILY,
    )


def _installed_tasks() -> set[str]:
    from harness.registry import task_names

    return set(task_names())


def _hardware_key(submission: PublishedSubmission) -> str:
    data = submission.data
    machine = next((m for m in data["bundle"]["machines"] if m["id"] == data["machine_id"]), {})
    return machine.get("hardware_key", "")


def _family_board(
    board: Leaderboard, families: dict[tuple[str, str, str], str], reference: dict[str, str]
) -> Leaderboard:
    """The board's rows renamed to their method family; rows of no family are left out."""
    rows = []
    for row in board.rows:
        if row.is_reference_method and row.method_name == reference.get(board.task):
            rows.append(dataclasses.replace(row, method_name=REFERENCE_FAMILY))
        elif (board.task, row.method_hash, row.hardware_key) in families:
            family = families[(board.task, row.method_hash, row.hardware_key)]
            rows.append(dataclasses.replace(row, method_name=family, is_reference_method=False))
    return dataclasses.replace(board, rows=rows)


def _profile_key(profile: str) -> tuple[int, str]:
    return ({"smoke": 0, "standard": 1, "full": 2}.get(profile, 3), profile)


def _render_submissions(
    writer: _Writer,
    submissions: list[PublishedSubmission],
    include_private: bool,
    infos: dict[str, TaskInfo],
) -> None:
    """A page per submission, with a copy of its file (in public form unless `include_private`:
    a scrubbed copy's checksums no longer match; the original under `results/` is the one to
    verify) and its verification report."""
    for submission in submissions:
        data = submission.data
        if not include_private:
            data = {**data, "bundle": public_bundle(data["bundle"])}
        writer.text(
            submission_path(submission, ".json"), json.dumps(data, indent=1, sort_keys=True) + "\n"
        )
        if submission.report is not None:
            writer.text(
                submission_path(submission, ".verification.json"),
                json.dumps(submission.report, indent=1, sort_keys=True) + "\n",
            )
        writer.page(
            submission_path(submission),
            "submission.html",
            title=f"submission {submission.data['method']['name']}",
            submission=submission,
            scrubbed=not include_private,
            scores=_submission_scores(submission, infos.get(submission.data["task"])),
            machine=next(
                (
                    m
                    for m in submission.data["bundle"]["machines"]
                    if m["id"] == submission.data["machine_id"]
                ),
                None,
            ),
        )


def _submission_scores(submission: PublishedSubmission, info: TaskInfo | None) -> list:
    """(column, summary over the submitted seeds) per metric, headline metrics first."""
    values: dict[str, list[float]] = {}
    units: dict[str, tuple[str, bool]] = {}
    for run in submission.data["bundle"]["runs"]:
        if run["status"] != "succeeded":
            continue
        for m in run["measurements"]:
            values.setdefault(m["name"], []).append(m["value"])
            units[m["name"]] = (m["unit"], m["higher_is_better"])
    declared = {c.name: c for c in info.metrics} if info else {}
    order = {name: index for index, name in enumerate(declared)}
    return [
        (declared.get(name) or MetricColumn(name, *units[name]), SeedSummary.of(found))
        for name, found in sorted(values.items(), key=lambda item: (order.get(item[0], 1e9),
                                                                   item[0]))
    ]  # fmt: skip


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
        writer = csv.DictWriter(buffer, fieldnames=[csv_cell(name) for name in records[0]])
        writer.writeheader()
        writer.writerows(
            {csv_cell(key): csv_cell(value) for key, value in record.items()} for record in records
        )
    return buffer.getvalue()


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula (`=HYPERLINK(…)`, `+`, `-`, `@`, tab,
    CR first) gets a leading `'`, OWASP's advice; numbers are left as they are."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _latest_machines(machines: list[MachineRecord]) -> dict[str, MachineRecord]:
    """The newest fingerprint of each hardware key."""
    latest: dict[str, MachineRecord] = {}
    for machine in machines:
        latest[machine.hardware_key] = machine
    return latest


def _render_methods(
    writer: _Writer,
    runs: list[RunRecord],
    submissions: list[PublishedSubmission],
    include_private: bool,
) -> None:
    by_method: dict[str, list[RunRecord]] = {}
    for run in runs:
        by_method.setdefault(run.method_hash, []).append(run)
    for method_hash, method_runs in by_method.items():
        latest = method_runs[-1]
        writer.page(
            method_path(method_hash),
            "method.html",
            title=f"method {latest.method_name}",
            method=latest,
            sources=(
                run_to_dict(latest) if include_private else public_run_dict(run_to_dict(latest))
            )["provenance"].get("method_sources", []),
            runs=list(reversed(method_runs)),
            submissions=[
                sub for sub in submissions if sub.data["method"]["method_hash"] == method_hash
            ],
        )


def _render_runs(
    writer: _Writer, runs: list[RunRecord], include_private: bool, infos: dict[str, TaskInfo]
) -> None:
    for run in runs:
        declared = (
            {column.name: column for column in infos[run.task].metrics}
            if run.task in (infos)
            else {}
        )
        shown = run_to_dict(run) if include_private else public_run_dict(run_to_dict(run))
        record = {**shown, "machine": machine_to_dict(run.machine)}
        writer.text(run_path(run.id, ".json"), json.dumps(record, indent=1, sort_keys=True) + "\n")
        curves: dict[str, list] = {}
        for point in run.curve_points:
            curves.setdefault(point.metric, []).append(point)
        plots = []
        for metric, points in sorted(curves.items()):
            line = Line(metric, [p.x for p in points], [p.value for p in points])
            svg = line_plot_svg(
                [line], title=metric, x_label=points[0].x_unit, y_label=points[0].unit,
                y_from_zero=False,
            )  # fmt: skip
            path = _plot_path("runs", run.id, metric)
            writer.text(path, svg)
            plots.append((path, metric))
        writer.page(
            run_path(run.id),
            "run.html",
            title=f"run {run.id[:8]}",
            run=run,
            shown=shown,
            artifacts=[_publish_artifact(writer, run.id, artifact) for artifact in run.artifacts],
            curves=plots,
            groups=metric_groups(run.measurements, declared),
            budget_s=(run.settings or {}).get("budget_s"),
            error_summary=(shown["error"] or "").split("\n\n", 1)[0],
        )


_INLINE_IMAGES = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp"}
_DOWNLOADS = {
    "application/json": "json",
    "application/jsonl": "jsonl",
    "application/x-ndjson": "jsonl",
    "text/csv": "csv",
    "text/plain": "txt",
}


@dataclass(frozen=True)
class ShownArtifact:
    """An artifact as a run page shows it: an image inline, other files to download."""

    name: str
    media_type: str
    size_bytes: int
    sha256: str
    kind: str
    """image, download or missing (the file is not here or no longer matches its sha256)."""
    src: str = ""


def _publish_artifact(writer: _Writer, run_id: str, artifact) -> ShownArtifact:
    """Copy a run's artifact into the site under a name made of its hash and slug. SVG is
    shown as a data URI in an <img>, where a hostile file's scripts never run; other types
    are written with an extension from a fixed list, so a browser never runs them either."""
    data = read_artifact(artifact)
    shown = functools.partial(
        ShownArtifact, artifact.name, artifact.media_type, artifact.size_bytes, artifact.sha256
    )
    if data is None:
        return shown("missing")
    if artifact.media_type == "image/svg+xml":
        return shown("image", "data:image/svg+xml;base64," + base64.b64encode(data).decode())
    image = artifact.media_type in _INLINE_IMAGES
    extension = _INLINE_IMAGES.get(artifact.media_type) or _DOWNLOADS.get(artifact.media_type)
    path = (
        f"artifacts/{slug(run_id)}/{artifact.sha256[:16]}-{slug(artifact.name)}"
        f".{extension or 'bin'}"
    )
    writer.bytes(path, data)
    return shown("image" if image else "download", path)


METRIC_GROUPS = {
    "quality": "Quality: how good the result is",
    "speed": "Speed: how fast the work ran",
    "memory": "Memory and size",
    "budget": "Budget bookkeeping: what the run spent (no better or worse)",
}
_SPEED_UNITS = ("/s", "tflop", "gb/s")
_BUDGET_NAMES = {"steps", "parameters", "flops_per_token", "longest_step_s", "quantize_s"}


def metric_group(name: str, unit: str) -> str:
    """quality, speed, memory or budget, from the metric's name and unit."""
    lowered, unit_lowered = name.lower(), unit.lower()
    if lowered.startswith("budget") or lowered in _BUDGET_NAMES:
        return "budget"
    if unit_lowered.endswith(_SPEED_UNITS) or "mfu" in lowered or lowered.endswith("_s"):
        return "speed"  # memory bandwidth (GB/s) is a speed
    if "memory" in lowered or unit_lowered in ("mib", "gib", "bytes", "bits"):
        return "memory"
    return "quality"


def metric_groups(measurements, declared: dict[str, MetricColumn]) -> list[tuple[str, list]]:
    """A run's measurements by group, in the task's order, each with its description."""
    order = {name: index for index, name in enumerate(declared)}
    grouped: dict[str, list] = {group: [] for group in METRIC_GROUPS}
    for measurement in sorted(measurements, key=lambda m: (order.get(m.name, 1e9), m.name)):
        column = declared.get(measurement.name)
        grouped[metric_group(measurement.name, measurement.unit)].append(
            (measurement, column.description if column else "", readable_name(measurement.name))
        )
    return [(METRIC_GROUPS[group], items) for group, items in grouped.items() if items]


def _duration(seconds: float | None) -> str:
    """`0.4 s`, `12.3 s`, `4 min 05 s`, `2 h 03 min`."""
    if seconds is None:
        return "–"
    if seconds < 60:
        return f"{seconds:.3g} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _render_machines(
    writer: _Writer,
    runs: list[RunRecord],
    machines: list[MachineRecord],
    latest: dict[str, MachineRecord],
    changes,
) -> None:
    for hardware_key, machine in latest.items():
        machine_runs = [r for r in runs if r.hardware_key == hardware_key]
        machine_changes = [c for c in changes if c.hardware_key == hardware_key]
        software = [m for m in machines if m.hardware_key == hardware_key]
        history = _history(machine_runs, machine_changes)
        plots = []
        for name, svg in history.plots.items():
            path = _plot_path("machines", hardware_key, name)
            writer.text(path, svg)
            plots.append((path, name))
        writer.page(
            machine_path(hardware_key),
            "machine.html",
            title=machine.hardware_label,
            machine=machine,
            software_versions=software,
            plots=plots,
            constant=history.constant,
            runs=list(reversed(machine_runs))[:200],
            changes=machine_changes,
        )


MAX_PLOTS_PER_MACHINE = 60


@dataclass(frozen=True)
class History:
    """A machine's history: an SVG per varying (task, profile, metric), by name, and the
    metrics that never changed as (task, profile, metric, value, unit, runs) rows."""

    plots: dict[str, str]
    constant: list[tuple[str, str, str, float, str, int]]


@dataclass
class _Point:
    at: datetime
    value: float
    low: float
    high: float
    software_key: str


def _history(runs: list[RunRecord], changes) -> History:
    """A line per method (with the spread of its repetitions as a band), a mark where the
    software changed between runs and one where a step was detected; constant metrics are
    listed rather than plotted, as a flat line says nothing a table does not."""
    series: dict[tuple[str, str, str, str], dict[str, list[_Point]]] = {}
    for run in runs:
        if run.status != "succeeded":
            continue
        for m in run.measurements:
            key = (run.task, run.profile, m.name, m.unit)
            low, high = (min(m.samples), max(m.samples)) if m.samples else (m.value, m.value)
            point = _Point(run.started_at, m.value, low, high, run.software_key)
            series.setdefault(key, {}).setdefault(run.method_name, []).append(point)
    plots: dict[str, str] = {}
    constant = []
    for (task, profile, metric, unit), by_method in sorted(series.items()):
        points = [p for method_points in by_method.values() for p in method_points]
        if max(len(method_points) for method_points in by_method.values()) < 2:
            continue  # no method has a history here yet
        if len({p.value for p in points}) == 1:
            constant.append((task, profile, metric, points[0].value, unit, len(points)))
            continue
        if len(plots) == MAX_PLOTS_PER_MACHINE:
            continue
        lines = [
            Line(method, [p.at for p in pts], [p.value for p in pts],
                 low=[p.low for p in pts], high=[p.high for p in pts])
            for method, pts in sorted(by_method.items())
        ]  # fmt: skip
        markers = _software_marks(sorted(points, key=lambda p: p.at)) + [
            (c.at, f"step {c.relative_change:+.0%}")
            for c in changes
            if (c.task, c.profile, c.metric) == (task, profile, metric)
        ]
        plots[f"{task}-{profile}-{metric}"] = line_plot_svg(
            lines, title=f"{task} · {profile} · {metric}", x_label="run started (UTC)",
            y_label=unit, vertical_markers=markers,
        )  # fmt: skip
    return History(plots, constant)


def _software_marks(points: list[_Point]) -> list[tuple[datetime, str]]:
    return [
        (after.at, f"software {after.software_key[:6]}")
        for before, after in itertools.pairwise(points)
        if after.software_key != before.software_key
    ]
