"""The large-batch arithmetic: steps-to-target, scaling efficiency, the critical batch size and
the gradient noise scale (McCandlish et al. 2018, "An Empirical Model of Large-Batch Training").

Pure Python on numbers (no torch), so every formula is tested on synthetic data with known
answers.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass


def first_step_at_target(evaluations: Sequence[tuple[int, float]], target: float) -> int | None:
    """The first evaluated step whose held-out loss is at or below `target`, or None.

    Not interpolated: steps-to-target is a step at which the model was actually measured at the
    target, on the evaluation grid every method shares.
    """
    for step, loss in evaluations:
        if loss <= target:
            return step
    return None


def evaluation_steps(step_cap: int, growth: float) -> list[int]:
    """Steps at which held-out loss is measured: every step up to 10, then a geometric grid
    (each point `growth` times the last, rounded up), always ending at the cap.

    The grid depends only on the step cap, so it is the same for every method; its spacing bounds
    the resolution of steps-to-target (within a factor `growth`).
    """
    steps: list[int] = []
    step = 1
    while step < step_cap:
        steps.append(step)
        step = step + 1 if step < 10 else max(step + 1, math.ceil(step * growth))
    steps.append(step_cap)
    return steps


def scaling_efficiencies(steps_to_target: dict[int, int]) -> dict[int, float]:
    """For each batch size that reached the target: the steps perfect linear scaling from the
    smallest such batch would need, divided by the steps it took (1.0 = perfect, 0.5 = twice as
    many steps as perfect scaling).

    Efficiency = S(B0)·B0 / (S(B)·B), B0 the smallest batch size that reached the target.
    """
    if not steps_to_target:
        return {}
    smallest = min(steps_to_target)
    reference = steps_to_target[smallest] * smallest
    return {batch: reference / (steps * batch) for batch, steps in steps_to_target.items()}


def largest_batch_within_tolerance(
    sweep: Sequence[int], efficiencies: dict[int, float], min_efficiency: float
) -> int | None:
    """The largest batch size B of the sweep such that B and every smaller batch size of the
    sweep reached the target with at least `min_efficiency` of perfect scaling (None if the
    smallest did not). A batch size that missed the target or diverged ends the run of good ones.
    """
    largest = None
    for batch in sorted(sweep):
        if efficiencies.get(batch, 0.0) < min_efficiency:
            break
        largest = batch
    return largest


@dataclass(frozen=True)
class CriticalBatchFit:
    """S(B) = S_min (1 + B_noise / B), fitted in log space (McCandlish et al. eq. 2.11)."""

    min_steps: float
    """S_min: the steps needed with an infinitely large batch."""
    critical_batch: float
    """B_crit = B_noise = E_min / S_min, in examples."""
    rms_log_error: float

    @property
    def min_examples(self) -> float:
        """E_min = S_min * B_crit: the examples needed with an infinitely small batch."""
        return self.min_steps * self.critical_batch

    def steps(self, batch: float) -> float:
        return self.min_steps * (1.0 + self.critical_batch / batch)


def fit_critical_batch(steps_to_target: dict[int, float]) -> CriticalBatchFit | None:
    """Least squares of log S against log(S_min (1 + B_crit / B)) over the batch sizes that
    reached the target.

    For a given B_crit the best log S_min is the mean residual, so the fit is a one-dimensional
    search over log B_crit (a grid, then golden-section refinement). Returns None with fewer than
    three points, or when the best B_crit lies outside [B_min/100, 100·B_max], i.e. the sweep
    shows no bend (perfect scaling throughout, or no scaling at all) and the number would be an
    extrapolation.
    """
    points = sorted(steps_to_target.items())
    if len(points) < 3:
        return None
    batches = [float(b) for b, _ in points]
    log_steps = [math.log(s) for _, s in points]
    low, high = math.log(batches[0] / 100.0), math.log(batches[-1] * 100.0)

    def loss(log_critical: float) -> tuple[float, float]:
        critical = math.exp(log_critical)
        shape = [math.log1p(critical / b) for b in batches]
        log_min = sum(s - f for s, f in zip(log_steps, shape, strict=True)) / len(batches)
        error = sum((s - log_min - f) ** 2 for s, f in zip(log_steps, shape, strict=True))
        return error, log_min

    grid = [low + (high - low) * i / 400 for i in range(401)]
    best = min(range(len(grid)), key=lambda i: loss(grid[i])[0])
    if best in (0, len(grid) - 1):
        return None
    a, b = grid[best - 1], grid[best + 1]
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    for _ in range(60):
        c, d = b - ratio * (b - a), a + ratio * (b - a)
        if loss(c)[0] < loss(d)[0]:
            b = d
        else:
            a = c
    log_critical = (a + b) / 2.0
    error, log_min = loss(log_critical)
    return CriticalBatchFit(
        min_steps=math.exp(log_min),
        critical_batch=math.exp(log_critical),
        rms_log_error=math.sqrt(error / len(batches)),
    )


@dataclass
class NoiseScaleEstimator:
    """The simple gradient noise scale B_simple = tr(Σ) / |G|², from pairs of gradient norms at
    two batch sizes (McCandlish et al. 2018, appendix A).

    With |G_b|² the squared norm of a gradient averaged over b examples, E|G_b|² = |G|² + tr(Σ)/b,
    so from a small batch b and a big batch B:

        |G|²  ≈ (B |G_B|² - b |G_b|²) / (B - b)
        tr(Σ) ≈ (|G_b|² - |G_B|²) / (1/b - 1/B)

    are unbiased. Each estimate is noisy (either can be negative), so, as the paper advises, both
    are summed over many steps and divided only at the end.
    """

    trace_sum: float = 0.0
    gradient_sum: float = 0.0
    pairs: int = 0

    def add(self, small_batch: int, small_sq_norm: float, big_batch: int, big_sq_norm: float):
        if big_batch <= small_batch:
            raise ValueError("the big batch must be larger than the small one")
        b, big = float(small_batch), float(big_batch)
        self.gradient_sum += (big * big_sq_norm - b * small_sq_norm) / (big - b)
        self.trace_sum += (small_sq_norm - big_sq_norm) / (1.0 / b - 1.0 / big)
        self.pairs += 1

    @property
    def noise_scale(self) -> float | None:
        """B_simple in examples, or None before any pair or when either sum is not positive (the
        estimates were too noisy to say anything)."""
        if self.pairs == 0 or self.gradient_sum <= 0.0 or self.trace_sum <= 0.0:
            return None
        return self.trace_sum / self.gradient_sum


MIN_NOISE_STEPS = 10


def noise_scale_near_target(
    pairs: Sequence[tuple[int, int, float, int, float]], steps_to_target: int
) -> NoiseScaleEstimator:
    """B_simple at the target loss: the two-batch estimator summed over the gradients of the last
    fifth of the steps to target (at least `MIN_NOISE_STEPS`), not over the whole run, because
    B_simple grows as the loss falls (McCandlish et al. compare it with B_crit at matched loss).

    `pairs` holds (step, small batch, |G_small|², big batch, |G_big|²), `step` the 0-based index
    of the update that gradient was for.
    """
    window = max(MIN_NOISE_STEPS, steps_to_target // 5)
    estimator = NoiseScaleEstimator()
    for step, small, small_sq, big, big_sq in pairs:
        if steps_to_target - window <= step < steps_to_target:
            estimator.add(small, small_sq, big, big_sq)
    return estimator


def log_grid(low: float, high: float, count: int) -> list[float]:
    """`count` rates evenly spaced in log between `low` and `high` inclusive (their geometric
    middle for one): the trials of the per-batch-size search, the same count for every method."""
    if count == 1:
        return [math.sqrt(low * high)]
    ratio = math.log(high / low) / (count - 1)
    return [low * math.exp(ratio * i) for i in range(count)]


def geometric_mean(values: Sequence[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


BOOTSTRAP_RESAMPLES = 1000
CONFIDENCE = 0.95


def bootstrap_interval(
    samples: Mapping[int, Sequence[float]],
    statistic: Callable[[dict[int, list[float]]], float | None],
    *,
    seed: int,
    resamples: int = BOOTSTRAP_RESAMPLES,
    confidence: float = CONFIDENCE,
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of `statistic` over seeds: each batch size's seed results
    are resampled with replacement, independently (seeds are independent runs), and the
    statistic is recomputed; resamples where it is undefined (None, e.g. a fit that finds no
    bend) are left out. None when a batch size has fewer than two seeds (one run says nothing
    about spread) or fewer than half the resamples gave a value.

    With n seeds a batch size has only n^n resamples: with 2 seeds the interval is about the
    range of the two results, so it says how far two seeds disagree, not a 95% guarantee.
    """
    if any(len(v) < 2 for v in samples.values()):
        return None
    rng = random.Random(seed)
    values = []
    for _ in range(resamples):
        drawn = {b: [rng.choice(list(v)) for _ in v] for b, v in samples.items()}
        value = statistic(drawn)
        if value is not None:
            values.append(value)
    if len(values) < resamples / 2:
        return None
    values.sort()
    tail = (1.0 - confidence) / 2.0
    low = values[math.floor(tail * (len(values) - 1))]
    high = values[math.ceil((1.0 - tail) * (len(values) - 1))]
    return low, high
