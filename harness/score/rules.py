"""The aggregation rules, stated once: how seeds become one number, which runs count, and how
tasks become a suite score. Leaderboards (`boards`), the suite score (`suite`), reports and the
site's submission pages all call these functions.

Rules:
- **Seeds → one number per metric**: the median over a method's counted runs; with at least
  `OLYMPIC_MIN_SEEDS` runs, the olympic mean (drop the single lowest and highest, average the
  rest), as MLPerf does. The min and max are kept beside it so readers see the spread.
- **Which runs count**: a run counts only when it succeeded and did not miss the task's quality
  gate. A run that missed the gate is a failure; an entry with any such run is not ranked on that
  task (it appears, unranked), and an entry with no counted run has no value there.
- **Suite score** (per hardware key, over one profile's standard leaderboards; each task judged by
  its ranking metric, the first headline metric):
  - *Performance profile* (AlgoPerf): on each task an entry's ratio is how far it is from the
    best entry there (`best / value` when higher is better, `value / best` when lower is; 1 for
    the best). Its profile ρ(τ) is the fraction of the suite's tasks with ratio ≤ τ, and its
    score is the area under ρ from τ = 1 to `TAU_MAX`, divided by `TAU_MAX - 1` (1.0: best on
    every task; 0.0: never within `TAU_MAX` of the best). A task the entry is missing or not
    ranked on has ratio ∞ and adds nothing. Ties share the best ratio of 1.
  - *Speedup*: on each task, the entry's value against the task's reference method on the same
    hardware (`value / reference` when higher is better, `reference / value` when lower is);
    the geometric mean over the tasks where both are ranked. Missing or unranked tasks are left
    out of the mean and listed, so a partial score is never mistaken for a full one.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

OLYMPIC_MIN_SEEDS = 5
TAU_MAX = 4.0


def seed_rule(count: int) -> str:
    """The name of the rule that aggregates `count` seeds."""
    return "olympic mean" if count >= OLYMPIC_MIN_SEEDS else "median"


def aggregate_seeds(values: Sequence[float]) -> float:
    """One number from a metric's per-seed values (median; olympic mean from 5 seeds)."""
    if not values:
        raise ValueError("no values to aggregate")
    if len(values) >= OLYMPIC_MIN_SEEDS:
        return statistics.fmean(sorted(values)[1:-1])
    return statistics.median(values)


@dataclass(frozen=True)
class SeedSummary:
    """A metric over an entry's counted runs: the aggregate, and min..max as the spread."""

    value: float
    low: float
    high: float
    n: int
    rule: str

    @classmethod
    def of(cls, values: Sequence[float]) -> SeedSummary:
        return cls(
            aggregate_seeds(values), min(values), max(values), len(values), seed_rule(len(values))
        )


def run_counts(status: str, gate_passed: bool | None) -> bool:
    """A run counts toward an entry's numbers only if it succeeded and did not miss the gate."""
    return status == "succeeded" and gate_passed is not False


def is_ranked(succeeded: int, gate_missed: int) -> bool:
    """An entry is ranked with at least one succeeded run and no run that missed the gate."""
    return succeeded > 0 and gate_missed == 0


@dataclass(frozen=True)
class TaskEntry:
    """One entry's standing on one task (on one hardware key): its ranking-metric value."""

    task: str
    entry: str
    value: float | None
    ranked: bool
    higher_is_better: bool
    is_reference: bool = False


def ratio_to_best(value: float, best: float, higher_is_better: bool) -> float:
    """How far `value` is from `best` (≥ 1; 1 when equal). Non-positive values are ∞."""
    if value == best:
        return 1.0
    if higher_is_better:
        return best / value if value > 0 else math.inf
    return value / best if best > 0 else math.inf


def performance_ratios(entries: Iterable[TaskEntry]) -> dict[str, dict[str, float]]:
    """entry -> task -> ratio to the task's best ranked entry (unranked entries: ∞)."""
    by_task: dict[str, list[TaskEntry]] = {}
    for item in entries:
        by_task.setdefault(item.task, []).append(item)
    ratios: dict[str, dict[str, float]] = {}
    for task, items in by_task.items():
        scored = [i for i in items if i.ranked and i.value is not None]
        best = None
        if scored:
            pick = max if scored[0].higher_is_better else min
            best = pick(i.value for i in scored)  # type: ignore[type-var]
        for item in items:
            if best is None or not item.ranked or item.value is None:
                ratio = math.inf
            else:
                ratio = ratio_to_best(item.value, best, item.higher_is_better)
            ratios.setdefault(item.entry, {})[task] = ratio
    return ratios


def profile_score(
    ratios: Mapping[str, float], tasks: Sequence[str], tau_max: float = TAU_MAX
) -> float:
    """Area under ρ(τ) from 1 to `tau_max`, normalised to 0..1, over `tasks` (missing: ∞)."""
    if not tasks:
        return 0.0
    area = sum(max(0.0, tau_max - max(1.0, ratios.get(task, math.inf))) for task in tasks)
    return area / ((tau_max - 1.0) * len(tasks))


def speedup(value: float, reference: float, higher_is_better: bool) -> float | None:
    """How many times better than the reference (None when either number is not positive)."""
    if value <= 0 or reference <= 0:
        return None
    return value / reference if higher_is_better else reference / value


def geometric_mean(values: Sequence[float]) -> float | None:
    if not values:
        return None
    return math.exp(statistics.fmean(math.log(v) for v in values))


@dataclass
class EntryScore:
    """One entry's suite score on one hardware key."""

    entry: str
    profile_score: float
    geomean_speedup: float | None
    ratios: dict[str, float]
    speedups: dict[str, float]
    tasks_missing: list[str] = field(default_factory=list)
    """Tasks of the suite without a ranked result of this entry (not ranked, failed or absent)."""
    tasks_without_reference: list[str] = field(default_factory=list)
    """Tasks ranked here but whose reference method has no ranked result on this hardware."""

    @property
    def complete(self) -> bool:
        return not self.tasks_missing


@dataclass
class SuiteScore:
    """Every entry's suite score on one hardware key, best profile score first."""

    hardware_key: str
    hardware_label: str
    profile: str
    tasks: list[str]
    entries: list[EntryScore]
    tau_max: float = TAU_MAX

    def as_dict(self) -> dict:
        """JSON-ready: an infinite ratio (not ranked on that task) becomes null."""
        data = asdict(self)
        for entry in data["entries"]:
            ratios = entry["ratios"]
            entry["ratios"] = {task: None if math.isinf(r) else r for task, r in ratios.items()}
        return data


def suite_score(
    results: Sequence[TaskEntry],
    tasks: Sequence[str],
    hardware_key: str = "",
    hardware_label: str = "",
    profile: str = "",
    tau_max: float = TAU_MAX,
) -> SuiteScore:
    """Score every entry in `results` over `tasks` (one hardware key's results).

    Ties: entries with equal profile scores keep name order. A task listed in `tasks` with no
    result at all counts as missing for everyone.
    """
    ratios = performance_ratios(r for r in results if r.task in tasks)
    references = {r.task: r for r in results if r.is_reference and r.ranked and r.value is not None}
    scores = []
    for entry in sorted({r.entry for r in results}):
        mine = {r.task: r for r in results if r.entry == entry and r.task in tasks}
        speedups: dict[str, float] = {}
        without_reference = []
        missing = []
        for task in tasks:
            item = mine.get(task)
            if item is None or not item.ranked or item.value is None:
                missing.append(task)
                continue
            reference = references.get(task)
            ratio = (
                speedup(item.value, reference.value, item.higher_is_better) if reference else None
            )
            if ratio is None:
                without_reference.append(task)
            else:
                speedups[task] = ratio
        entry_ratios = ratios.get(entry, {})
        scores.append(
            EntryScore(
                entry=entry,
                profile_score=profile_score(entry_ratios, tasks, tau_max),
                geomean_speedup=geometric_mean(list(speedups.values())),
                ratios={task: entry_ratios.get(task, math.inf) for task in tasks},
                speedups=speedups,
                tasks_missing=missing,
                tasks_without_reference=without_reference,
            )
        )
    scores.sort(key=lambda s: -s.profile_score)  # stable: ties stay in name order
    return SuiteScore(hardware_key, hardware_label, profile, list(tasks), scores, tau_max)
