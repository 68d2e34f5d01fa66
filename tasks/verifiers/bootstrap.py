"""Bootstrap confidence intervals for the task's quantities, over tasks and samples within a task.

Each replicate draws the tasks with replacement, then, within each drawn task, its n samples
with replacement (a sample keeps its weak and strong verdicts together), and recomputes every
quantity on the replicate; the interval is the 2.5th and 97.5th percentile over replicates
(`level` 0.95). Both levels of sampling are uncertain: which problems a benchmark holds, and
which samples a model happened to produce for each. The replicates use closed forms (pass@k by
Chen et al.'s estimator, resampling accuracy and utility by `analysis.py`'s formulas), computed
for all replicates at once with numpy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tasks.verifiers.analysis import TaskCounts


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


def _pass_table(n: int) -> np.ndarray:
    """table[c, k - 1] = pass@k for n samples with c passing (k = 1..n)."""
    table = np.ones((n + 1, n))
    for c in range(n + 1):
        for k in range(1, n + 1):
            if n - c >= k:
                table[c, k - 1] = 1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1))
    return table


class Bootstrap:
    """Replicates of per-task counts (weak passes, strong passes, both) for `replicates` draws."""

    def __init__(
        self, tasks: Sequence[TaskCounts], replicates: int, seed: int, level: float = 0.95
    ) -> None:
        self.n = min(t.n for t in tasks)
        self.level = level
        self.table = _pass_table(self.n)
        rng = np.random.default_rng(seed)
        weak = np.array([t.weak[: self.n] for t in tasks], dtype=bool)
        strong = np.array([t.strong[: self.n] for t in tasks], dtype=bool)
        drawn_tasks = rng.integers(0, len(tasks), size=(replicates, len(tasks)))
        drawn_samples = rng.integers(0, self.n, size=(replicates, len(tasks), self.n))
        w = weak[drawn_tasks[..., None], drawn_samples]
        s = strong[drawn_tasks[..., None], drawn_samples]
        self.weak = w.sum(axis=2)
        self.strong = s.sum(axis=2)
        self.both = (w & s).sum(axis=2)

    def interval(self, values: np.ndarray) -> Interval:
        """The percentile interval of per-replicate values (NaN replicates left out)."""
        tail = (1.0 - self.level) / 2 * 100
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            return Interval(float("nan"), float("nan"))
        low, high = np.percentile(finite, [tail, 100 - tail])
        return Interval(float(low), float(high))

    def pass_at_k(self, k: int, strong: bool) -> np.ndarray:
        counts = self.strong if strong else self.weak
        return self.table[counts, k - 1].mean(axis=1)

    def _given_weak(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.weak > 0, self.both / np.maximum(self.weak, 1), np.nan)

    def ceiling(self) -> np.ndarray:
        """Worst-case ceiling: mean P(strong | weak), 0 for tasks without a weak pass."""
        return np.nan_to_num(self._given_weak(), nan=0.0).mean(axis=1)

    def conditional_accuracy(self) -> np.ndarray:
        """The paper's: mean P(strong | weak) over tasks with a weak pass."""
        given = self._given_weak()
        counted = np.isfinite(given).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(counted > 0, np.nansum(given, axis=1) / counted, np.nan)

    def _submit(self) -> np.ndarray:
        """[replicate, task, k - 1]: P(a weak pass among k samples), computed once."""
        if not hasattr(self, "_submit_cache"):
            self._submit_cache = self.table.astype(np.float32)[self.weak]
        return self._submit_cache

    def resampling_accuracy(self) -> np.ndarray:
        """[replicate, k - 1]: mean_t pass@k(weak) x P(strong | weak)."""
        q = np.nan_to_num(self._given_weak(), nan=0.0)
        return (self._submit() * q[..., None]).mean(axis=1)

    def utilities(self, cost: float) -> np.ndarray:
        """[replicate, k - 1]: utility with false-positive cost `cost`."""
        q = np.nan_to_num(self._given_weak(), nan=0.0)
        reward = q - cost * (1.0 - q)
        return (self._submit() * reward[..., None]).mean(axis=1)

    def optimal_k(self, cost: float, abstain: bool) -> tuple[np.ndarray, np.ndarray]:
        """Per replicate, k* (first best k; 0 when `abstain` and its utility is negative) and
        the utility there (0 on abstention)."""
        values = self.utilities(cost)
        best = values.argmax(axis=1)
        utility = values[np.arange(len(values)), best]
        k = best + 1.0
        if abstain:
            negative = utility < 0
            k = np.where(negative, 0.0, k)
            utility = np.where(negative, 0.0, utility)
        return k, utility
