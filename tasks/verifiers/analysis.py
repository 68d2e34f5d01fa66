"""Resampling with an imperfect verifier: pass@k, accuracy vs. k, utility, the two-type model.

After Stroebl, Kapoor & Narayanan, "Inference Scaling fLaws: The Limits of LLM Resampling with
Imperfect Verifiers". Per task t there are n samples; c_w pass the weak verifier, c_s the strong
one (ground truth), c_ws both.

- pass@k (Chen et al. 2021, unbiased): 1 - C(n - c, k) / C(n, k), computed as the stable product
  1 - prod_{i = n - c + 1}^{n} (1 - k / i).
- Resampling: draw samples in random order and submit the first of the first k that passes the
  weak verifier; abstain if none does. Its accuracy is P(some weak pass among k) times
  P(strong | weak) = c_ws / c_w, because the first weak-passing sample of a random order is a
  uniform draw among the weak-passing ones; as k -> n the accuracy tends to the ceiling
  mean_t [c_w > 0] c_ws / c_w, whatever the number of samples. `simulate_resampling` checks the
  closed form by seeded permutations.
- Utility with false-positive cost C: +1 for a correct submission, -C for a wrong one, 0 for an
  abstention; U(k) = mean_t P(submit within k) (q_t - C (1 - q_t)), q_t = P(strong | weak).
  k* is the k in 1..n with the highest U (ties: the smallest k).
- Two-type model: tasks are "easy" or "hard" (split at the median strong pass rate); each type
  has a probability p of a correct sample and a false-positive rate f = P(weak pass | incorrect),
  fitted from the samples. A sample passes the weak verifier with q = p + (1 - p) f, and
  accuracy(k) = sum_types share (1 - (1 - q)^k) p / q: the paper's point that the ceiling
  p / q < 1 stays however large k grows when f > 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TaskCounts:
    """Per-sample verdicts of one task, in the order the samples were drawn."""

    task_id: str
    weak: tuple[bool, ...]
    strong: tuple[bool, ...]

    @property
    def n(self) -> int:
        return len(self.weak)

    @property
    def weak_passes(self) -> int:
        return sum(self.weak)

    @property
    def strong_passes(self) -> int:
        return sum(self.strong)

    @property
    def both(self) -> int:
        return sum(w and s for w, s in zip(self.weak, self.strong, strict=True))

    @property
    def strong_given_weak(self) -> float | None:
        """P(strong | weak), None when no sample passes the weak verifier."""
        return self.both / self.weak_passes if self.weak_passes else None

    @property
    def verifier_false_negatives(self) -> int:
        """Samples that pass the strong tests but fail the weak ones."""
        return sum(s and not w for w, s in zip(self.weak, self.strong, strict=True))


def pass_at_k(n: int, c: int, k: int) -> float:
    """Chen et al.'s unbiased estimator of P(at least one of k draws passes)."""
    if k > n:
        raise ValueError(f"k={k} exceeds n={n}")
    if n - c < k:
        return 1.0
    return 1.0 - float(np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def mean_pass_at_k(tasks: Sequence[TaskCounts], k: int, strong: bool) -> float:
    return float(
        np.mean([pass_at_k(t.n, t.strong_passes if strong else t.weak_passes, k) for t in tasks])
    )


def resampling_accuracy(tasks: Sequence[TaskCounts], k: int) -> float:
    """Closed form: mean_t pass@k(weak) * P(strong | weak)."""
    return float(np.mean([_submit_probability(t, k) * (t.strong_given_weak or 0.0) for t in tasks]))


def _submit_probability(task: TaskCounts, k: int) -> float:
    return pass_at_k(task.n, task.weak_passes, k)


def resampling_ceiling(tasks: Sequence[TaskCounts]) -> float:
    """Accuracy as k -> infinity: mean_t P(strong | weak), 0 for tasks nothing passes."""
    return float(np.mean([t.strong_given_weak or 0.0 for t in tasks]))


def simulate_resampling(
    tasks: Sequence[TaskCounts], ks: Sequence[int], permutations: int, seed: int
) -> list[float]:
    """Accuracy at each k by seeded random orders of each task's samples."""
    rng = np.random.default_rng(seed)
    correct = np.zeros(len(ks))
    positions = np.asarray(ks)
    for task in tasks:
        weak = np.asarray(task.weak, dtype=bool)
        strong = np.asarray(task.strong, dtype=bool)
        # One row per permutation (the same draws as `permutations` calls of rng.permutation).
        orders = rng.permuted(np.tile(np.arange(task.n), (permutations, 1)), axis=1)
        passed = weak[orders]
        first = passed.argmax(axis=1)  # the first weak pass of each order
        right = passed.any(axis=1) & strong[orders[np.arange(permutations), first]]
        correct += (positions[None, :] > first[right][:, None]).sum(axis=0)
    return list(correct / (permutations * len(tasks)))


def utility(tasks: Sequence[TaskCounts], k: int, cost: float) -> float:
    """Expected reward per task: +1 correct, -cost wrong, 0 abstain."""
    values = []
    for task in tasks:
        q = task.strong_given_weak or 0.0
        values.append(_submit_probability(task, k) * (q - cost * (1.0 - q)))
    return float(np.mean(values))


def optimal_k(tasks: Sequence[TaskCounts], cost: float, max_k: int) -> tuple[int, float]:
    """The k in 1..max_k with the highest utility, and that utility."""
    best_k, best = 1, utility(tasks, 1, cost)
    for k in range(2, max_k + 1):
        value = utility(tasks, k, cost)
        if value > best + 1e-12:
            best_k, best = k, value
    return best_k, best


@dataclass(frozen=True)
class TaskType:
    share: float
    correct_rate: float
    false_positive_rate: float

    @property
    def weak_pass_rate(self) -> float:
        return self.correct_rate + (1.0 - self.correct_rate) * self.false_positive_rate

    def accuracy(self, k: float) -> float:
        q = self.weak_pass_rate
        if q <= 0.0:
            return 0.0
        return (1.0 - (1.0 - q) ** k) * self.correct_rate / q


def fit_two_types(tasks: Sequence[TaskCounts]) -> tuple[TaskType, TaskType]:
    """Easy (strong pass rate above the median) and hard tasks, each with its pooled rates.

    The model assumes no verifier false negatives: a correct sample passes the weak tests.
    """
    rates = np.array([t.strong_passes / t.n for t in tasks])
    median = float(np.median(rates))
    easy = [t for t, r in zip(tasks, rates, strict=True) if r > median]
    hard = [t for t, r in zip(tasks, rates, strict=True) if r <= median]
    return _pooled(easy, len(tasks)), _pooled(hard, len(tasks))


def _pooled(group: Sequence[TaskCounts], total: int) -> TaskType:
    samples = sum(t.n for t in group)
    if not samples:
        return TaskType(0.0, 0.0, 0.0)
    correct = sum(t.strong_passes for t in group)
    incorrect = samples - correct
    false_positives = sum(t.weak_passes - t.both for t in group)
    return TaskType(
        share=len(group) / total,
        correct_rate=correct / samples,
        false_positive_rate=false_positives / incorrect if incorrect else 0.0,
    )


def two_type_accuracy(types: Sequence[TaskType], k: float) -> float:
    return sum(t.share * t.accuracy(k) for t in types)


def two_type_ceiling(types: Sequence[TaskType]) -> float:
    return sum(t.share * (t.correct_rate / t.weak_pass_rate) for t in types if t.weak_pass_rate)
