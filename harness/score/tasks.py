"""What scoring knows about each task: its metric columns in display order, the task-spec hash
of each standard profile, the paper references, and the leaderboards built with them.

Read from the installed task classes and the suite spec (never by running a task), so boards of
a task that is not installed here still build, from the units stored with their runs.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from harness.errors import InputError
from harness.score.boards import Leaderboard, MetricColumn, PaperReference, build_leaderboards
from harness.store.records import RunRecord


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


def task_infos(task_names: Iterable[str]) -> tuple[dict[str, TaskInfo], dict, dict]:
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
                profiles=tuple(ref.get("profiles", ())),
            )
            for ref in spec.references
        ]
        module = sys.modules[task_cls.__module__]
        infos[name] = TaskInfo(
            name=name,
            description=task_cls.description,
            # The module docstring without its title line, which the page's heading replaces.
            methodology=(inspect.getdoc(module) or "").partition("\n\n")[2],
            metrics=metric_columns(task_cls),
            interface=[(f.signature, f.doc) for f in task_cls.method_interface],
            profiles=spec.profiles,
            spec_description=spec.description,
            required_seeds={profile: spec.seeds_required(profile) for profile in spec.profiles},
            tolerances=spec.tolerances,
        )
    return infos, standard_hashes, references


def metric_columns(task_cls) -> list[MetricColumn]:
    """The task's scalar metrics, headline ones first in the task's order, then the rest."""
    headline = list(task_cls.headline_metrics) or [m.name for m in task_cls.metrics]
    scalars = {m.name: m for m in task_cls.metrics if not m.is_curve}
    ordered = [scalars[name] for name in headline if name in scalars]
    ordered += [m for m in scalars.values() if m.name not in headline]
    return [
        MetricColumn(m.name, m.unit, m.higher_is_better, m.description, headline=m.name in headline)
        for m in ordered
    ]


def leaderboards(runs: list[RunRecord]) -> tuple[list[Leaderboard], dict[str, TaskInfo]]:
    """The leaderboards of `runs` (finished runs), and what is known of their tasks."""
    infos, standard_hashes, references = task_infos({run.task for run in runs})
    boards = build_leaderboards(
        runs,
        {name: info.metrics for name, info in infos.items()},
        standard_hashes,
        references,
    )
    return boards, infos
