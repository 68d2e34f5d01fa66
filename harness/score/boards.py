"""Leaderboards: runs grouped into rows of (method, machine) per task, profile and task spec.

A row aggregates the seeds of one method on one hardware key by the rules of `harness.score.rules`
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

from harness.score.rules import SeedSummary, is_ranked, run_counts
from harness.store.records import RunRecord


@dataclass(frozen=True)
class MetricColumn:
    name: str
    unit: str
    higher_is_better: bool
    description: str = ""
    headline: bool = True
    """Shown as a leaderboard column; every metric is in the downloads either way."""

    @property
    def title(self) -> str:
        """The name as a reader says it: `quality_retained` -> `quality retained`."""
        return readable_name(self.name)

    @property
    def direction(self) -> str:
        return "↑ higher is better" if self.higher_is_better else "↓ lower is better"


@dataclass(frozen=True)
class PaperReference:
    """A published result shown for orientation (from the suite spec's [[references]])."""

    name: str
    source: str
    metrics: dict[str, float]
    note: str = ""
    profiles: tuple[str, ...] = ()
    """The profiles run under the publication's conditions, the only boards it is shown beside;
    empty: every standard board that records one of its metrics."""


@dataclass
class LeaderboardRow:
    method_name: str
    method_hash: str
    is_reference_method: bool
    hardware_key: str
    hardware_label: str
    devices: list[str]
    software_key: str = ""
    hardware: dict[str, Any] = field(default_factory=dict)
    software: dict[str, Any] = field(default_factory=dict)
    """The machine's software fingerprint (the row's runs all share it)."""
    run_ids: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    """The distinct seeds of the counted runs (a seed run twice counts once)."""
    succeeded: int = 0
    failed: int = 0
    gate_missed: int = 0
    metrics: dict[str, SeedSummary] = field(default_factory=dict)
    last_run_at: datetime | None = None

    @property
    def ranked(self) -> bool:
        """Ranked only with at least one succeeded run and no run that missed the gate."""
        return is_ranked(self.succeeded, self.gate_missed)

    @property
    def torch_version(self) -> str:
        return str(self.software.get("packages", {}).get("torch") or "–")

    @property
    def cuda_version(self) -> str:
        return str(self.software.get("cuda") or "–")

    def as_record(self, columns: list[MetricColumn]) -> dict[str, Any]:
        """A flat record for the JSON and CSV downloads."""
        record: dict[str, Any] = {
            "method": self.method_name,
            "method_hash": self.method_hash,
            "reference_method": self.is_reference_method,
            "hardware_key": self.hardware_key,
            "machine": self.hardware_label,
            "devices": " ".join(self.devices),
            "torch": self.torch_version,
            "cuda": self.cuda_version,
            "software_key": self.software_key,
            "runs_succeeded": self.succeeded,
            "distinct_seeds": len(self.seeds),
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


MAX_SHOWN_COLUMNS = 6


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
    def shown_columns(self) -> list[MetricColumn]:
        """The headline columns that fit a screen; every metric is in the downloads."""
        return self.headline_columns[:MAX_SHOWN_COLUMNS]

    @property
    def ranking(self) -> list[MetricColumn]:
        """The columns that order the rows: the first ranks, the next break ties in turn."""
        return self.headline_columns or self.columns

    @property
    def is_smoke(self) -> bool:
        """A smoke profile checks that the pipeline runs; its numbers are not results."""
        return self.profile == "smoke"

    @property
    def ranked_rows(self) -> list[LeaderboardRow]:
        return [row for row in self.rows if row.ranked]

    @property
    def unranked_rows(self) -> list[LeaderboardRow]:
        return [row for row in self.rows if not row.ranked]


def build_leaderboards(
    runs: Iterable[RunRecord],
    declared_metrics: dict[str, list[MetricColumn]],
    standard_hashes: dict[tuple[str, str], str],
    references: dict[str, list[PaperReference]],
) -> list[Leaderboard]:
    """Group finished runs into leaderboards.

    `declared_metrics` gives each known task's metrics in display order (unknown tasks use the
    units stored with the measurements); `standard_hashes` maps (task, profile) to the task-spec
    hash of the suite's unmodified profile.
    """
    groups: dict[tuple[str, str, str, str], dict[tuple[str, str, str], list[RunRecord]]] = {}
    for run in runs:
        if run.status == "running":
            continue
        key = (run.task, run.profile, run.suite_version, run.task_spec_hash)
        row_key = (run.method_hash, run.hardware_key, run.software_key)
        groups.setdefault(key, {}).setdefault(row_key, []).append(run)

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
                    and (not reference.profiles or profile in reference.profiles)
                ],
            )
        )
    boards.sort(key=lambda b: (b.task, profile_rank(b.profile), not b.is_standard, b.slug))
    return boards


PROFILE_ORDER = ("smoke", "standard", "full")
"""The suite's profiles from quickest to longest: boards and pages list profiles in this order."""


def profile_rank(profile: str) -> int:
    """A profile's place in `PROFILE_ORDER`; a profile the suite does not name comes last."""
    return PROFILE_ORDER.index(profile) if profile in PROFILE_ORDER else len(PROFILE_ORDER)


def _row(runs: list[RunRecord]) -> LeaderboardRow:
    runs = sorted(runs, key=lambda r: (r.started_at, r.id))
    last = runs[-1]
    row = LeaderboardRow(
        method_name=last.method_name,
        method_hash=last.method_hash,
        is_reference_method=last.is_reference_method,
        hardware_key=last.hardware_key,
        hardware_label=last.machine.hardware_label,
        devices=sorted({r.device for r in runs}),
        software_key=last.software_key,
        hardware=last.machine.fingerprint.get("hardware", {}),
        software=last.machine.fingerprint.get("software", {}),
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
        if run.seed not in row.seeds:
            row.seeds.append(run.seed)
        for measurement in run.measurements:
            values.setdefault(measurement.name, []).append(measurement.value)
    row.metrics = {name: SeedSummary.of(v) for name, v in values.items()}
    return row


def _rank(rows: list[LeaderboardRow], columns: list[MetricColumn]) -> None:
    """Order ranked rows by the first headline column in its better direction, ties broken by
    the next headline columns in turn, then by method name; unranked rows last."""
    ranking = [column for column in columns if column.headline] or columns

    def key(row: LeaderboardRow) -> tuple:
        if not row.ranked:
            return (1, (), row.method_name)
        values = []
        for column in ranking:
            summary = row.metrics.get(column.name)
            if summary is None:
                values.append((1, 0.0))
            else:
                values.append((0, -summary.value if column.higher_is_better else summary.value))
        return (0, tuple(values), row.method_name)

    rows.sort(key=key)


def bundle_scores(
    runs: list[dict[str, Any]], declared: list[MetricColumn]
) -> list[tuple[MetricColumn, SeedSummary]]:
    """(column, summary over the seeds) per metric of a bundle's runs (a submission's), the
    `declared` metrics first in their order; a run that did not succeed adds nothing."""
    values: dict[str, list[float]] = {}
    units: dict[str, tuple[str, bool]] = {}
    for run in runs:
        if run["status"] != "succeeded":
            continue
        for m in run["measurements"]:
            values.setdefault(m["name"], []).append(m["value"])
            units[m["name"]] = (m["unit"], m["higher_is_better"])
    columns = {c.name: c for c in declared}
    order = {name: index for index, name in enumerate(columns)}
    return [
        (columns.get(name) or MetricColumn(name, *units[name]), SeedSummary.of(found))
        for name, found in sorted(values.items(), key=lambda item: (order.get(item[0], 1e9),
                                                                   item[0]))
    ]  # fmt: skip


_WORDS = {"kl": "KL", "ppl": "perplexity", "mfu": "MFU", "mib": "MiB", "gbps": "GB/s",
          "tflops": "TFLOP/s", "se": "std. error", "h2d": "host→device",
          "d2h": "device→host", "fp32": "fp32", "bf16": "bf16", "fp16": "fp16", "p90": "p90",
          "p99": "p99", "p999": "p99.9", "mlm": "MLM", "ln": "ln"}  # fmt: skip


def readable_name(name: str) -> str:
    """A metric name in words: underscores to spaces, known abbreviations spelled out."""
    words = name.split("_")
    if len(words) > 2 and words[-2:] == ["per", "s"]:
        words[-2:] = ["per second"]
    elif len(words) > 1 and words[-1] == "s":
        words[-1] = "(s)"
    return " ".join(_WORDS.get(word, word) for word in words)


def machine_title(hardware: dict[str, Any]) -> str:
    """The accelerator first, as a reader compares machines: `1× NVIDIA H100 80GB HBM3`, or the
    CPU where there is no GPU."""
    gpus = hardware.get("gpus") or []
    if gpus:
        names = sorted({str(gpu.get("name", "GPU")) for gpu in gpus})
        return f"{len(gpus)}× {' + '.join(names)}"
    return f"{hardware.get('cpu_model', 'unknown CPU')} (no GPU)"


def machine_details(hardware: dict[str, Any]) -> str:
    """The rest of the machine in one line: CPU cores and model, memory."""
    parts = [f"{hardware.get('cpu_logical_cores', '?')}× {hardware.get('cpu_model', '?')}"]
    if hardware.get("ram_gib"):
        parts.append(f"{hardware['ram_gib']} GiB RAM")
    return " · ".join(parts)
