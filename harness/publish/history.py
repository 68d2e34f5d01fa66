"""A machine's history as plots: each varying metric over time per method, with marks where
the software changed and where `harness.score.regressions` found a step.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime

from harness.publish.plots import Line, line_plot_svg
from harness.store.records import RunRecord

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


def machine_history(runs: list[RunRecord], changes) -> History:
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
