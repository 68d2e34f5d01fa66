"""The suite score from the leaderboards: each machine's entries judged across the suite's tasks
by the rules of `harness.score.rules` (performance profile and geometric-mean speedup).

`compute_suite_scores` is what `budgetbench suite score` prints: every method under its own
name. `suite_sections` is what the site shows: an entry is a method family across tasks (the
accepted submissions that declare one `--suite-entry` name, or the tasks' reference methods
together), and only entries that cover every task get a score.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import NamedTuple

from harness.score.boards import Leaderboard, LeaderboardRow, profile_rank
from harness.score.rules import TAU_MAX, EntryScore, SuiteScore, TaskEntry, suite_score
from harness.store import Store

REFERENCE_FAMILY = "reference methods"


def suite_scores(
    boards: Iterable[Leaderboard],
    profile: str,
    tasks: Sequence[str],
    reference_methods: Mapping[str, str],
    tau_max: float = TAU_MAX,
) -> list[SuiteScore]:
    """The suite score per hardware key from the standard leaderboards of `profile`.

    `tasks` are the suite's tasks (a task without a board counts as missing for everyone);
    `reference_methods` names each task's reference method (its first). An entry is a method
    name: a submitter uses one name across tasks to be scored as one entry.
    """
    by_hardware: dict[str, list[TaskEntry]] = {}
    labels: dict[str, str] = {}
    for board in boards:
        if board.profile != profile or not board.is_standard or board.task not in tasks:
            continue
        headline = board.headline_columns or board.columns
        if not headline:
            continue
        metric = headline[0]
        for row in board.rows:
            summary = row.metrics.get(metric.name)
            labels[row.hardware_key] = row.hardware_label
            by_hardware.setdefault(row.hardware_key, []).append(
                TaskEntry(
                    task=board.task,
                    entry=row.method_name,
                    value=summary.value if summary else None,
                    ranked=row.ranked and summary is not None,
                    higher_is_better=metric.higher_is_better,
                    is_reference=row.is_reference_method
                    and row.method_name == reference_methods.get(board.task),
                )
            )
    return [
        suite_score(results, tasks, key, labels[key], profile, tau_max)
        for key, results in sorted(by_hardware.items(), key=lambda item: labels[item[0]])
    ]


def compute_suite_scores(
    store: Store, profile: str, suite_version: str | None = None
) -> tuple[list[SuiteScore], list[str]]:
    """The suite score per machine over the suite's tasks (see `harness.score.rules`)."""
    from harness.score.inputs import load_runs
    from harness.score.tasks import leaderboards

    boards, _infos = leaderboards(load_runs(store).runs)
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
    newest: dict[tuple[str, str], LeaderboardRow] = {}
    for row in board.rows:
        key = (row.method_hash, row.hardware_key)
        if key not in newest or (row.last_run_at or datetime.min.replace(tzinfo=timezone.utc)) > (
            newest[key].last_run_at or datetime.min.replace(tzinfo=timezone.utc)
        ):
            newest[key] = row
    kept = set(map(id, newest.values()))
    return dataclasses.replace(board, rows=[row for row in board.rows if id(row) in kept])


class SuiteSection(NamedTuple):
    """The suite score of one profile: the entries that cover every task (per machine), and
    the others with the tasks they miss, so an empty table says why it is empty."""

    profile: str
    tasks: list[str]
    complete: list[SuiteScore]
    partial: list[tuple[SuiteScore, EntryScore]]


def suite_sections(
    boards: list[Leaderboard], entries: Mapping[tuple[str, str, str], str]
) -> list[SuiteSection]:
    """One section per profile with standard boards, entries being method families: `entries`
    maps (task, method hash, hardware key) to the family a submission declared."""
    from harness.registry import load_task, task_names

    installed = set(task_names())
    profiles = sorted(
        {b.profile for b in boards if b.is_standard}, key=lambda p: (profile_rank(p), p)
    )
    sections = []
    for profile in profiles:
        reference = {b.task: load_task(b.task).reference_methods[0] for b in boards
                     if b.task in installed}  # fmt: skip
        family_boards = [_family_board(b, entries, reference) for b in boards]
        scores, tasks = _suite_scores(family_boards, profile, None, REFERENCE_FAMILY)
        complete = [
            dataclasses.replace(score, entries=[e for e in score.entries if not e.tasks_missing])
            for score in scores
        ]
        partial = [
            (score, entry) for score in scores for entry in score.entries if entry.tasks_missing
        ]
        sections.append(SuiteSection(profile, tasks, [c for c in complete if c.entries], partial))
    return sections


def _family_board(
    board: Leaderboard, families: Mapping[tuple[str, str, str], str], reference: dict[str, str]
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
