"""pass@k, resampling accuracy and utility against brute force and simulation."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from tasks.verifiers import analysis
from tasks.verifiers.analysis import TaskCounts


def _random_tasks(seed: int, count: int, n: int) -> list[TaskCounts]:
    rng = random.Random(seed)
    tasks = []
    for index in range(count):
        strong = tuple(rng.random() < rng.random() for _ in range(n))
        # weak passes every strong pass plus some false positives (no false negatives)
        weak = tuple(s or rng.random() < 0.3 for s in strong)
        tasks.append(TaskCounts(f"t{index}", weak, strong))
    return tasks


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_pass_at_k_equals_brute_force_over_all_subsets(n):
    for c in range(n + 1):
        outcomes = [True] * c + [False] * (n - c)
        for k in range(1, n + 1):
            subsets = list(itertools.combinations(range(n), k))
            brute = sum(any(outcomes[i] for i in subset) for subset in subsets) / len(subsets)
            assert analysis.pass_at_k(n, c, k) == pytest.approx(brute, abs=1e-12)


def test_pass_at_k_is_stable_for_large_n():
    value = analysis.pass_at_k(1000, 3, 10)
    exact = 1 - math.comb(997, 10) / math.comb(1000, 10)
    assert value == pytest.approx(exact, rel=1e-12)


def test_resampling_closed_form_equals_brute_force_over_orderings():
    task = TaskCounts("t", (True, False, True, True, False), (True, False, False, True, False))
    n = task.n
    for k in range(1, n + 1):
        orders = list(itertools.permutations(range(n)))
        correct = 0
        for order in orders:
            chosen = next((i for i in order[:k] if task.weak[i]), None)
            correct += chosen is not None and task.strong[chosen]
        brute = correct / len(orders)
        assert analysis.resampling_accuracy([task], k) == pytest.approx(brute, abs=1e-12)


def test_resampling_simulation_matches_closed_form():
    tasks = _random_tasks(seed=3, count=25, n=12)
    ks = list(range(1, 13))
    simulated = analysis.simulate_resampling(tasks, ks, permutations=400, seed=0)
    for k, value in zip(ks, simulated, strict=True):
        assert value == pytest.approx(analysis.resampling_accuracy(tasks, k), abs=0.02)


def test_resampling_reaches_the_ceiling_at_n_and_not_beyond():
    tasks = _random_tasks(seed=4, count=30, n=10)
    ceiling = analysis.resampling_ceiling(tasks)
    assert analysis.resampling_accuracy(tasks, 10) == pytest.approx(ceiling)
    coverage = analysis.mean_pass_at_k(tasks, 10, strong=True)
    assert ceiling <= coverage + 1e-12  # a false positive costs accuracy that coverage counts


def test_utility_with_false_positive_cost_can_prefer_few_samples():
    # One task where a weak pass is usually wrong: more samples only submit more wrong answers.
    bad = TaskCounts("bad", (True,) * 2 + (False,) * 8, (True,) + (False,) * 9)
    good = TaskCounts("good", (True,) * 5 + (False,) * 5, (True,) * 5 + (False,) * 5)
    tasks = [bad, good]
    assert analysis.optimal_k([good], cost=8.0, max_k=10)[0] == 6  # pass@k(weak) = 1 from k=6
    assert analysis.optimal_k(tasks, cost=0.0, max_k=10)[0] >= 9
    best_k, best = analysis.optimal_k(tasks, cost=8.0, max_k=10)
    assert best_k < 10
    assert best == pytest.approx(max(analysis.utility(tasks, k, 8.0) for k in range(1, 11)))


def test_two_type_model_fits_its_own_ceiling():
    tasks = _random_tasks(seed=5, count=40, n=20)
    types = analysis.fit_two_types(tasks)
    assert sum(t.share for t in types) == pytest.approx(1.0)
    values = [analysis.two_type_accuracy(types, k) for k in (1, 10, 100, 10_000)]
    assert values == sorted(values)
    assert values[-1] == pytest.approx(analysis.two_type_ceiling(types), abs=1e-9)
    assert analysis.two_type_ceiling(types) < 1.0
