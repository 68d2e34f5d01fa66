"""The static leaderboard site: asks `harness.score` for the boards, suite scores and changes of
a store's runs (it never runs tasks and computes no number itself) and renders Jinja templates.

Pages: index, one leaderboard per task/profile/spec (with JSON and CSV downloads), a page per
method, run (with its raw JSON) and machine (with history plots), regressions, a methodology
page per task, the suite score, and a page per submission from `results/` (its enclosed source,
runs and verification report; see `harness.score.inputs.published_results`). Links are relative,
so the site works from `file://` and any static host. Templates autoescape: every string from a
bundle or a method is rendered as text.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from harness import __version__
from harness.errors import InputError
from harness.paths import site_root
from harness.publish.downloads import change_record, csv_table
from harness.publish.links import board_path, methodology_path
from harness.publish.pages import (
    render_machines,
    render_methods,
    render_runs,
    render_submissions,
    render_suite_score,
)
from harness.publish.templates import environment
from harness.publish.writer import PageWriter
from harness.score.boards import Leaderboard
from harness.score.inputs import StoredRuns, load_runs
from harness.score.suite import SuiteSection, suite_sections
from harness.score.tasks import TaskInfo, leaderboards
from harness.store import Store
from harness.submit.results import PublishedSubmission, RejectedFile, suite_entries

SITE_MARKER = ".budgetbench-site"


@dataclass(frozen=True)
class SiteSummary:
    out: Path
    pages: int
    runs: int
    machines: int
    leaderboards: int


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
    submissions = submissions or []
    with store.session() as session:
        changes = find_changes(session)
    stored = load_runs(store)
    boards, infos = leaderboards(stored.runs)
    sections = suite_sections(boards, suite_entries(submissions))
    staging = Path(tempfile.mkdtemp(prefix=".site-", dir=out.parent))
    try:
        writer = PageWriter(staging, environment())
        shutil.copytree(site_root() / "static", staging / "static")
        _render(
            writer, stored, boards, infos, changes, sections, submissions, rejected or [],
            include_private,
        )  # fmt: skip
        (staging / SITE_MARKER).write_text(f"built by budgetbench {__version__}\n")
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return SiteSummary(out, writer.pages, len(stored.runs), len(stored.machines), len(boards))


def _check_output_directory(out: Path) -> None:
    """Refuse to replace a directory that is not an earlier site build (or empty)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists() and (
        not out.is_dir() or (any(out.iterdir()) and not (out / SITE_MARKER).exists())
    ):
        raise InputError(f"{out} exists and is not a budgetbench site: refusing to replace it")


def _render(
    writer: PageWriter,
    stored: StoredRuns,
    boards: list[Leaderboard],
    infos: dict[str, TaskInfo],
    changes,
    sections: list[SuiteSection],
    submissions: list[PublishedSubmission],
    rejected: list[RejectedFile],
    include_private: bool,
) -> None:
    runs = stored.runs
    last_updated = max((r.finished_at or r.started_at for r in runs), default=None)
    tasks = sorted({board.task for board in boards} | set(infos))
    boards_by_task = {task: [b for b in boards if b.task == task] for task in tasks}
    hardware = stored.latest_machines
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
    render_suite_score(writer, sections)
    render_submissions(writer, submissions, include_private, infos)
    for board in boards:
        records = [row.as_record(board.columns) for row in board.rows]
        writer.text(board_path(board, ".json"), json.dumps(records, indent=1, default=str) + "\n")
        writer.text(board_path(board, ".csv"), csv_table(records))
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
    render_methods(writer, runs, submissions, include_private)
    render_runs(writer, runs, include_private, infos)
    render_machines(writer, runs, stored.machines, hardware, changes)
    labels = {key: machine.hardware_label for key, machine in hardware.items()}
    records = [change_record(change) for change in changes]
    writer.text("regressions.json", json.dumps(records, indent=1) + "\n")
    writer.text("regressions.csv", csv_table(records))
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


def _when_iso(moment: datetime | None) -> str:
    return (moment or datetime.now(timezone.utc)).isoformat()
