"""Leaderboards: runs grouped into rows of (method, machine) per task, profile and task spec.

A row aggregates the seeds of one method on one hardware key by the rules of `harness.scoring`
(median over the counted runs, olympic mean from five), with the min and max so readers see the
spread, not one lucky number. Rows whose runs missed the task's quality gate (or all failed) are
listed apart, unranked. Runs with
modified settings (a different task-spec hash than the suite's) get their own leaderboard, marked
as non-standard, and never mix with standard ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from harness.scoring import SeedSummary, is_ranked, run_counts
from harness.store.models import Run


@dataclass(frozen=True)
class MetricColumn:
    name: str
    unit: str
    higher_is_better: bool
    description: str = ""
    headline: bool = True
    """Shown as a leaderboard column; every metric is in the downloads either way."""


@dataclass(frozen=True)
class PaperReference:
    """A published result shown for orientation (from the suite spec's [[references]])."""

    name: str
    source: str
    metrics: dict[str, float]
    note: str = ""


@dataclass
class LeaderboardRow:
    method_name: str
    method_hash: str
    is_reference_method: bool
    hardware_key: str
    hardware_label: str
    devices: list[str]
    run_ids: list[str] = field(default_factory=list)
    succeeded: int = 0
    failed: int = 0
    gate_missed: int = 0
    metrics: dict[str, SeedSummary] = field(default_factory=dict)
    last_run_at: datetime | None = None

    @property
    def ranked(self) -> bool:
        """Ranked only with at least one succeeded run and no run that missed the gate."""
        return is_ranked(self.succeeded, self.gate_missed)

    def as_record(self, columns: list[MetricColumn]) -> dict[str, Any]:
        """A flat record for the JSON and CSV downloads."""
        record: dict[str, Any] = {
            "method": self.method_name,
            "method_hash": self.method_hash,
            "reference_method": self.is_reference_method,
            "hardware_key": self.hardware_key,
            "machine": self.hardware_label,
            "devices": " ".join(self.devices),
            "seeds_succeeded": self.succeeded,
            "runs_failed": self.failed,
            "runs_missing_gate": self.gate_missed,
            "ranked": self.ranked,
        }
        for column in columns:
            summary = self.metrics.get(column.name)
            record[f"{column.name}_value"] = summary.value if summary else None
            record[f"{column.name}_rule"] = summary.rule if summary else None
            record[f"{column.name}_min"] = summary.low if summary else None
            record[f"{column.name}_max"] = summary.high if summary else None
        record["last_run_at"] = self.last_run_at.isoformat() if self.last_run_at else None
        return record


@dataclass
class Leaderboard:
    task: str
    profile: str
    suite_version: str
    task_spec_hash: str
    is_standard: bool
    columns: list[MetricColumn]
    rows: list[LeaderboardRow]
    references: list[PaperReference] = field(default_factory=list)

    @property
    def slug(self) -> str:
        suffix = "" if self.is_standard else f"-{self.task_spec_hash[:12]}"
        return f"{self.profile}{suffix}"

    @property
    def headline_columns(self) -> list[MetricColumn]:
        return [column for column in self.columns if column.headline]

    @property
    def ranked_rows(self) -> list[LeaderboardRow]:
        return [row for row in self.rows if row.ranked]

    @property
    def unranked_rows(self) -> list[LeaderboardRow]:
        return [row for row in self.rows if not row.ranked]


def build_leaderboards(
    runs: Iterable[Run],
    declared_metrics: dict[str, list[MetricColumn]],
    standard_hashes: dict[tuple[str, str], str],
    references: dict[str, list[PaperReference]],
) -> list[Leaderboard]:
    """Group finished runs into leaderboards.

    `declared_metrics` gives each known task's metrics in display order (unknown tasks use the
    units stored with the measurements); `standard_hashes` maps (task, profile) to the task-spec
    hash of the suite's unmodified profile.
    """
    groups: dict[tuple[str, str, str, str], dict[tuple[str, str], list[Run]]] = {}
    for run in runs:
        if run.status == "running":
            continue
        key = (run.task, run.profile, run.suite_version, run.task_spec_hash)
        groups.setdefault(key, {}).setdefault((run.method_hash, run.hardware_key), []).append(run)

    boards = []
    for (task, profile, suite_version, spec_hash), members in groups.items():
        rows = [_row(member_runs) for member_runs in members.values()]
        stored = {
            m.name: MetricColumn(m.name, m.unit, m.higher_is_better)
            for member_runs in members.values()
            for run in member_runs
            for m in run.measurements
        }
        columns = declared_metrics.get(task) or list(stored.values())  # as the task recorded them
        present = {name for row in rows for name in row.metrics}
        columns = [column for column in columns if column.name in present]
        _rank(rows, columns)
        # A task without a suite spec here (e.g. imported pytest-benchmark results) has no
        # standard settings to deviate from.
        is_standard = standard_hashes.get((task, profile), spec_hash) == spec_hash
        boards.append(
            Leaderboard(
                task=task,
                profile=profile,
                suite_version=suite_version,
                task_spec_hash=spec_hash,
                is_standard=is_standard,
                columns=columns,
                rows=rows,
                references=[
                    reference
                    for reference in (references.get(task, []) if is_standard else [])
                    if set(reference.metrics) & {column.name for column in columns}
                ],
            )
        )
    boards.sort(key=lambda b: (b.task, _profile_order(b.profile), not b.is_standard, b.slug))
    return boards


def _profile_order(profile: str) -> int:
    return {"smoke": 0, "standard": 1, "full": 2}.get(profile, 3)


def _row(runs: list[Run]) -> LeaderboardRow:
    runs = sorted(runs, key=lambda r: (r.started_at, r.id))
    last = runs[-1]
    row = LeaderboardRow(
        method_name=last.method_name,
        method_hash=last.method_hash,
        is_reference_method=last.is_reference_method,
        hardware_key=last.hardware_key,
        hardware_label=last.machine.hardware_label,
        devices=sorted({r.device for r in runs}),
        run_ids=[r.id for r in runs],
        last_run_at=last.started_at,
    )
    values: dict[str, list[float]] = {}
    for run in runs:
        if run.status != "succeeded":
            row.failed += 1
            continue
        row.succeeded += 1
        if not run_counts(run.status, run.gate_passed):
            row.gate_missed += 1
            continue
        for measurement in run.measurements:
            values.setdefault(measurement.name, []).append(measurement.value)
    row.metrics = {name: SeedSummary.of(v) for name, v in values.items()}
    return row


def _rank(rows: list[LeaderboardRow], columns: list[MetricColumn]) -> None:
    """Order ranked rows by the first headline column in its better direction; unranked last."""
    headline = [column for column in columns if column.headline] or columns
    if not headline:
        return
    first = headline[0]

    def key(row: LeaderboardRow) -> tuple[int, float]:
        summary = row.metrics.get(first.name)
        if not row.ranked or summary is None:
            return (1, 0.0)
        return (0, -summary.value if first.higher_is_better else summary.value)

    rows.sort(key=key)
