"""Performance history: find the runs where a metric stepped, and compare two groups of runs.

This is the library behind `budgetbench regress` (which steps happened, and which software update
came with each) and `budgetbench compare` (is B really faster than A, or is it noise).

A *series* is one metric of one comparable configuration (task, spec, profile, method, hardware),
ordered by run start. Detection on a series is three stages, each there for a reason:

1. A Hampel filter (rolling median of 7, points further than 4 noise units from it are replaced by
   it) removes isolated spikes and blips of up to 3 runs, so a noisy neighbour on the machine for
   one run is not proposed as a step. It keeps steps: a rolling median follows a step exactly.
2. PELT change-point search (ruptures `KernelCPD`, linear kernel = the l2 cost, whose C
   implementation makes 1,000 series of 500 points take about 2 s) on the series divided by its
   noise scale, with a penalty of `PENALTY_PER_LOG_N * log(n)` and segments of at least 3 points.
   The noise scale is the MAD of first differences, so neither the metric's unit, a step nor a
   slow drift inflates it, and one penalty fits every metric.
3. Each candidate is confirmed on the raw values either side of it (within the neighbouring
   segments, at most `WINDOW` points each side). It must be large: the medians differ by at
   least `threshold` (relative), and so does the jump left once a straight trend through both
   sides is allowed for (least squares), in the same direction; then significant: a two-sided
   Mann-Whitney U test at `alpha`. A candidate that fails is dropped and its neighbours are
   judged again against the merged segments, until every candidate left holds. Medians and
   ranks keep the verdict robust to the outliers the filter let through.

Consequences: a step is visible once 3 runs after it exist (3 against 8 or more before is
enough for p < 0.01); 1 or 2 runs are indistinguishable from a spike. A slow drift, which PELT
cuts into a staircase, is not reported at all (the trend explains every stair): this finds
steps, such as a software update causes, not gradual decline. A step during a drift is found.

Measured on synthetic series of 60 points with Gaussian noise of 1-2 % (tests/test_regressions.py):
- false alarms on 500 noise-only series: 0 with the defaults; 2 (0.4 %) with the effect-size
  floor off (threshold 0), leaving only the penalty and the test; 2 of 500 on heavy-tailed noise
  (Student t, 3 degrees of freedom) with threshold 0; 2 of 500 with the defaults when the noise
  is 5 % (as large as the threshold);
- planted 10 % steps at a random index: found, with the right sign, in 200 of 200 series, at
  exactly the planted index in 199 and one point off in the other; 3 single spikes of 0.3-3x per
  series: 0 alarms in 300 series; linear drifts of 5-40 % over the series: 0 alarms;
- detection over 1,000 series of 500 points: about 2 s on a 2-core machine
  (tests/benchmarks/test_regress_speed.py). Loading rows costs more than detecting: about
  0.6 s for 30,000 measurements from SQLite.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from harness.store.queries import StoreSession as Session
from harness.store.queries import machine_software, measured_values
from harness.store.records import RunRecord

DEFAULT_THRESHOLD = 0.05
DEFAULT_ALPHA = 0.01
MIN_SEGMENT = 3
WINDOW = 20
PENALTY_PER_LOG_N = 5.0
HAMPEL_HALF_WIDTH = 3
HAMPEL_LIMIT = 4.0
BOOTSTRAP_RESAMPLES = 9999

# Consistency factors: MAD and mean absolute deviation to a Gaussian standard deviation.
_MAD_TO_SIGMA = 1.4826
_MEAN_ABS_TO_SIGMA = math.sqrt(math.pi / 2)


# --- series -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeriesKey:
    """What makes two values comparable: same task spec, profile, method code, metric, hardware."""

    task: str
    task_spec_hash: str
    profile: str
    method_hash: str
    metric: str
    hardware_key: str


@dataclass(frozen=True)
class Point:
    run_id: str
    started_at: datetime
    value: float
    software_key: str
    machine_id: str


@dataclass(frozen=True)
class Series:
    """One metric's history; unit, direction and method name are those of the newest run."""

    key: SeriesKey
    method_name: str
    unit: str
    higher_is_better: bool
    points: tuple[Point, ...]

    @property
    def values(self) -> list[float]:
        return [point.value for point in self.points]


def load_series(
    session: Session, *, hardware_key: str | None = None, since: datetime | None = None
) -> list[Series]:
    """Every series of scalar measurements of succeeded runs, points oldest first.

    `hardware_key` is a prefix; `since` keeps runs started at or after it. Times come back as
    timezone-aware UTC (the store's column type sees to that).
    """
    points: dict[SeriesKey, list[Point]] = {}
    latest: dict[SeriesKey, tuple[str, str, bool]] = {}
    for row in measured_values(session, hardware_key=hardware_key, since=since):
        key = SeriesKey(
            row.task, row.task_spec_hash, row.profile, row.method_hash, row.name, row.hardware_key
        )
        point = Point(row.run_id, row.started_at, row.value, row.software_key, row.machine_id)
        points.setdefault(key, []).append(point)
        latest[key] = (row.method_name, row.unit, row.higher_is_better)
    return [Series(key, *latest[key], tuple(points[key])) for key in points]


# --- detection on plain numbers -------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """A confirmed level change: `index` is the first point after it.

    `before` and `after` are the index ranges whose values were compared.
    """

    index: int
    before: range
    after: range
    before_median: float
    after_median: float
    relative_change: float
    p_value: float


def detect_steps(
    values: Sequence[float],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    alpha: float = DEFAULT_ALPHA,
    min_size: int = MIN_SEGMENT,
    window: int = WINDOW,
) -> list[Step]:
    """The confirmed steps of `values` (in order), as described in the module docstring.

    `relative_change` is (after - before) / |before| of the medians, which is after/before - 1
    for positive metrics. A step whose median before is 0 has no relative size and is not
    reported.
    """
    signal = np.asarray(values, dtype=float)
    n = len(signal)
    if n < 2 * min_size:
        return []
    scale = _noise_scale(signal)
    if scale == 0.0:  # every first difference is the same: a straight line, no steps
        return []
    filtered = _hampel(signal, scale)
    normalised = (filtered - np.median(filtered)) / scale
    candidates = _pelt(normalised, min_size)
    return _confirm(signal, filtered, candidates, threshold, alpha, window)


def _noise_scale(signal: np.ndarray) -> float:
    """The noise standard deviation, from first differences so steps and drifts barely count.

    Falls back from the MAD to the mean absolute deviation when over half the differences are
    equal (a quantised metric), and gives 0 only when all of them are.
    """
    diffs = np.diff(signal)
    centred = np.abs(diffs - np.median(diffs))
    scale = _MAD_TO_SIGMA * float(np.median(centred))
    if scale == 0.0:
        scale = _MEAN_ABS_TO_SIGMA * float(np.mean(centred))
    return scale / math.sqrt(2)


def _hampel(signal: np.ndarray, scale: float) -> np.ndarray:
    """`signal` with points far from their rolling median replaced by that median.

    Reflecting the ends keeps a step in the last `HAMPEL_HALF_WIDTH` points intact, so a new
    regression is not mistaken for a spike once 3 runs show it.
    """
    width = HAMPEL_HALF_WIDTH
    if len(signal) <= width:
        return signal
    padded = np.pad(signal, width, mode="reflect")
    medians = np.median(np.lib.stride_tricks.sliding_window_view(padded, 2 * width + 1), axis=1)
    return np.where(np.abs(signal - medians) > HAMPEL_LIMIT * scale, medians, signal)


def _pelt(normalised: np.ndarray, min_size: int) -> list[int]:
    import ruptures

    penalty = PENALTY_PER_LOG_N * math.log(len(normalised))
    detector = ruptures.KernelCPD(kernel="linear", min_size=min_size, jump=1)
    breakpoints = detector.fit(normalised.reshape(-1, 1)).predict(pen=penalty)
    return [int(b) for b in breakpoints[:-1]]  # the last "breakpoint" is the series end


@dataclass(frozen=True)
class _Verdict:
    step: Step
    holds: bool
    weakness: tuple[float, float]  # larger is weaker: (p-value, -|relative change|)


def _confirm(
    signal: np.ndarray,
    filtered: np.ndarray,
    candidates: list[int],
    threshold: float,
    alpha: float,
    window: int,
) -> list[Step]:
    """Keep the candidates that pass, dropping the weakest failure and re-judging until none."""
    cache: dict[tuple[int, int, int], _Verdict] = {}
    candidates = list(candidates)
    while True:
        bounds = [0, *candidates, len(signal)]
        verdicts = []
        for i, index in enumerate(candidates):
            lo, hi = max(bounds[i], index - window), min(bounds[i + 2], index + window)
            if (lo, index, hi) not in cache:
                cache[lo, index, hi] = _judge(signal, filtered, lo, index, hi, threshold, alpha)
            verdicts.append(cache[lo, index, hi])
        failed = [i for i, verdict in enumerate(verdicts) if not verdict.holds]
        if not failed:
            return [verdict.step for verdict in verdicts]
        # Drop the least convincing failure: untested (too small) before insignificant, and
        # among those the smallest change; its neighbours are judged again without it.
        weakest = max(failed, key=lambda i: verdicts[i].weakness)
        del candidates[weakest]


def _judge(
    signal: np.ndarray,
    filtered: np.ndarray,
    lo: int,
    index: int,
    hi: int,
    threshold: float,
    alpha: float,
) -> _Verdict:
    """Size first (cheap), then significance: most candidates fail on size and skip the test."""
    from scipy.stats import mannwhitneyu

    before, after = signal[lo:index], signal[index:hi]
    before_median, after_median = float(np.median(before)), float(np.median(after))
    relative, sized = math.nan, False
    if before_median != 0.0:
        relative = (after_median - before_median) / abs(before_median)
        beyond_trend = _step_beyond_trend(filtered[lo:hi], index - lo) / abs(before_median)
        sized = min(abs(relative), abs(beyond_trend)) >= threshold and relative * beyond_trend > 0
    p_value = 1.0
    if sized:
        p_value = float(mannwhitneyu(before, after, alternative="two-sided").pvalue)
    step = Step(
        index, range(lo, index), range(index, hi), before_median, after_median, relative, p_value
    )
    size = 0.0 if math.isnan(relative) else abs(relative)
    return _Verdict(step, holds=sized and p_value <= alpha, weakness=(p_value, -size))


def _step_beyond_trend(values: np.ndarray, index: int) -> float:
    """The jump at `index` once a straight trend through both sides is allowed for.

    Least squares of values ~ level + slope * t + jump * (t >= index). On a slow drift the
    trend explains the difference of the medians and the jump is near 0, so PELT's piecewise
    approximation of a ramp is not reported as a staircase of steps.
    """
    t = np.arange(len(values), dtype=float)
    design = np.column_stack([np.ones_like(t), t - t.mean(), (t >= index).astype(float)])
    coefficients, *_ = np.linalg.lstsq(design, values, rcond=None)
    return float(coefficients[2])


# --- regressions in the store ---------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """A confirmed step in one series, with the software that changed around it.

    `at` is when the first run after the step started; `runs_before`/`runs_after` are the runs
    whose values were compared (oldest first); `software_before`/`software_after` are the
    software keys of the last run before and the first run after, and `software_diff` maps each
    differing fingerprint entry (nested dicts flattened, e.g. "packages.torch") to its
    (before, after) values, None where an entry is absent.
    """

    task: str
    task_spec_hash: str
    profile: str
    method_name: str
    method_hash: str
    hardware_key: str
    metric: str
    unit: str
    higher_is_better: bool
    at: datetime
    before_median: float
    after_median: float
    relative_change: float
    is_regression: bool
    p_value: float
    runs_before: tuple[str, ...]
    runs_after: tuple[str, ...]
    software_before: str
    software_after: str
    software_diff: dict[str, tuple[Any, Any]]


@dataclass(frozen=True)
class Examined:
    """What a regression scan looked at: an all-clear over nothing is no all-clear."""

    series: int
    runs: int
    machines: int

    @classmethod
    def of(cls, all_series: list[Series]) -> Examined:
        points = [point for series in all_series for point in series.points]
        return cls(
            series=len(all_series),
            runs=len({point.run_id for point in points}),
            machines=len({series.key.hardware_key for series in all_series}),
        )


def find_changes(
    session: Session,
    *,
    hardware_key: str | None = None,
    since: datetime | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    alpha: float = DEFAULT_ALPHA,
    loaded: list[Series] | None = None,
) -> list[Change]:
    """Confirmed steps in every series (or in the series `loaded` already): regressions first,
    then by size of the change."""
    found: list[tuple[Series, Step]] = []
    if loaded is None:
        loaded = load_series(session, hardware_key=hardware_key, since=since)
    for series in loaded:
        for step in detect_steps(series.values, threshold=threshold, alpha=alpha):
            found.append((series, step))
    software = machine_software(
        session,
        {
            series.points[i].machine_id
            for series, step in found
            for i in (step.index - 1, step.index)
        },
    )
    changes = [_change(series, step, software) for series, step in found]
    changes.sort(key=lambda change: (not change.is_regression, -abs(change.relative_change)))
    return changes


def _change(series: Series, step: Step, software: dict[str, dict[str, Any]]) -> Change:
    last_before, first_after = series.points[step.index - 1], series.points[step.index]
    worse = step.relative_change < 0 if series.higher_is_better else step.relative_change > 0
    key = series.key
    return Change(
        task=key.task,
        task_spec_hash=key.task_spec_hash,
        profile=key.profile,
        method_name=series.method_name,
        method_hash=key.method_hash,
        hardware_key=key.hardware_key,
        metric=key.metric,
        unit=series.unit,
        higher_is_better=series.higher_is_better,
        at=first_after.started_at,
        before_median=step.before_median,
        after_median=step.after_median,
        relative_change=step.relative_change,
        is_regression=worse,
        p_value=step.p_value,
        runs_before=tuple(series.points[i].run_id for i in step.before),
        runs_after=tuple(series.points[i].run_id for i in step.after),
        software_before=last_before.software_key,
        software_after=first_after.software_key,
        software_diff=software_diff(
            software.get(last_before.machine_id, {}), software.get(first_after.machine_id, {})
        ),
    )


def software_diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Entries that differ between two fingerprint `software` dicts, keyed by dotted path."""
    flat_before, flat_after = _flatten(before), _flatten(after)
    return {
        name: (flat_before.get(name), flat_after.get(name))
        for name in sorted(flat_before.keys() | flat_after.keys())
        if flat_before.get(name) != flat_after.get(name)
    }


def _flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for name, value in mapping.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{name}."))
        else:
            flat[f"{prefix}{name}"] = value
    return flat


# --- comparing two groups ---------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """B against A: `ratio` is median_b / median_a (above 1: B's values are larger).

    `ci` is the bootstrap confidence interval of the ratio at `confidence`; `ci` and `p_value`
    (two-sided Mann-Whitney U) are None when either group has fewer than 2 values, and `ratio`
    and `ci` are None when median_a is 0 (no ratio exists).
    """

    median_a: float
    median_b: float
    ratio: float | None
    ci: tuple[float, float] | None
    p_value: float | None
    n_a: int
    n_b: int
    confidence: float


def compare_groups(
    a: Sequence[float], b: Sequence[float], *, confidence: float = 0.95, seed: int = 0
) -> Comparison:
    """Compare two groups of values (repetitions of one run, or values of several runs).

    With fewer than 2 values in a group there is no spread to judge, so `ci` and `p_value` are
    None: the ratio alone says nothing about noise. Even with 2 or 3 values per group the exact
    Mann-Whitney test cannot reach p < 0.05; compare groups of 5 or more to learn something.
    The interval is a percentile bootstrap of the ratio of medians (seeded, so reproducible);
    BCa is avoided because its jackknife step is unreliable for medians of small groups.
    """
    if len(a) == 0 or len(b) == 0:
        raise ValueError("compare_groups needs at least one value in each group")
    values_a, values_b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    median_a, median_b = float(np.median(values_a)), float(np.median(values_b))
    ratio = median_b / median_a if median_a != 0.0 else None
    if len(values_a) < 2 or len(values_b) < 2:
        return Comparison(median_a, median_b, ratio, None, None, len(a), len(b), confidence)

    from scipy.stats import bootstrap, mannwhitneyu

    p_value = float(mannwhitneyu(values_a, values_b, alternative="two-sided").pvalue)
    ci = None
    if ratio is not None:

        def ratio_of_medians(x: np.ndarray, y: np.ndarray, axis: int) -> np.ndarray:
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.median(y, axis=axis) / np.median(x, axis=axis)

        result = bootstrap(
            (values_a, values_b),
            ratio_of_medians,
            n_resamples=BOOTSTRAP_RESAMPLES,
            batch=1000,
            vectorized=True,
            paired=False,
            confidence_level=confidence,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
        low, high = result.confidence_interval
        if math.isfinite(low) and math.isfinite(high):
            ci = (float(low), float(high))
    return Comparison(median_a, median_b, ratio, ci, p_value, len(a), len(b), confidence)


def comparison_values(run: RunRecord) -> dict[str, list[float]]:
    """Per scalar measurement of `run`: its raw repetitions if stored, else its one value."""
    return {m.name: list(m.samples) if m.samples else [m.value] for m in run.measurements}


@dataclass(frozen=True)
class MetricComparison:
    """One metric of `budgetbench compare`: group B against group A."""

    metric: str
    unit: str
    higher_is_better: bool
    comparison: Comparison
    alpha: float

    @property
    def verdict(self) -> str:
        """ "better"/"worse" for B when the interval excludes 1 and p < alpha, else why not."""
        c = self.comparison
        if c.p_value is None or c.ci is None or c.ratio is None:
            return "too few values to judge"
        if c.p_value >= self.alpha or c.ci[0] <= 1.0 <= c.ci[1]:
            return "no significant difference"
        larger = c.ratio > 1.0
        return "better" if larger == self.higher_is_better else "worse"


def compare_runs(
    a: Sequence[RunRecord], b: Sequence[RunRecord], *, alpha: float = 0.05
) -> list[MetricComparison]:
    """Compare two groups per metric they share.

    A group of one run contributes that run's raw repetitions (`samples`); a larger group
    contributes one value per run, so seeds, not repetitions, carry the spread.
    """
    values_a, values_b = _group_values(a), _group_values(b)
    directions = {
        m.name: (m.unit, m.higher_is_better) for run in (*a, *b) for m in run.measurements
    }
    return [
        MetricComparison(
            metric=name,
            unit=directions[name][0],
            higher_is_better=directions[name][1],
            comparison=compare_groups(values_a[name], values_b[name]),
            alpha=alpha,
        )
        for name in values_a
        if name in values_b
    ]


def _group_values(runs: Sequence[RunRecord]) -> dict[str, list[float]]:
    if len(runs) == 1:
        return comparison_values(runs[0])
    values: dict[str, list[float]] = {}
    for run in runs:
        for measurement in run.measurements:
            values.setdefault(measurement.name, []).append(measurement.value)
    return values
