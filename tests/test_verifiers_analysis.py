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


def _task(name: str, pairs: str) -> TaskCounts:
    """pairs: one of "b" (both pass), "w" (weak only), "s" (strong only), "-" per sample."""
    return TaskCounts(name, tuple(p in "bw" for p in pairs), tuple(p in "bs" for p in pairs))


def test_paper_conventions_beside_the_worst_case_ones():
    from tasks.verifiers import paper

    tasks = [
        _task("HumanEval/0", "bw--"),
        _task("HumanEval/1", "----"),
        _task("HumanEval/20", "ww--"),
    ]
    kept = paper.false_negative_filter(tasks)
    assert [t.task_id for t in kept] == ["HumanEval/0", "HumanEval/1"]  # /20 is on its list
    assert paper.conditional_accuracy(kept) == pytest.approx(0.5)  # the task with no pass skipped
    assert analysis.resampling_ceiling(kept) == pytest.approx(0.25)  # worst case scores it 0
    assert paper.false_positive_rate_by_task(tasks) == pytest.approx((0.5 + 1.0) / 2)
    # the first weak pass of HumanEval/0 (2 of 4 pass) can be sample 1..3, of /20 too
    assert paper.false_positive_rate_by_k(tasks, [1, 3, 4])[:2] == pytest.approx([0.75, 0.75])
    assert math.isnan(paper.false_positive_rate_by_k(tasks, [4])[0])
    # a verifier that is right half the time: every utility negative at cost 4, so abstain
    assert paper.optimal_k_with_abstention(kept, 4.0, 4) == (0, 0.0)
    assert analysis.optimal_k(kept, 4.0, 4)[0] >= 1  # the worst-case k* never abstains


def test_paper_two_type_model_as_written():
    from tasks.verifiers.paper import (
        PaperTwoTypes,
        paper_two_type_optimal_k,
        paper_two_type_utilities,
    )

    # easy tasks always right, hard ones never; a verifier that accepts half the wrong programs
    model = PaperTwoTypes(r_1=1.0, r_2=0.0, soundness=0.5, p_1=0.5, p_2=0.5)
    for cost in (0.0, 1.0, 4.0):  # by hand: U(1) = 0.5 - 0.25 C, U(2) = 0.5 - 0.5 C
        assert paper_two_type_utilities(model, cost, 2) == pytest.approx(
            [0.5 - 0.25 * cost, 0.5 - 0.5 * cost]
        )
    assert paper_two_type_optimal_k(model, 0.0, 2) == (1, 0.5)
    assert paper_two_type_optimal_k(model, 4.0, 2) == (0, 0.0)


def test_bootstrap_intervals_hold_the_estimate_and_vanish_without_variation():
    from tasks.verifiers.bootstrap import Bootstrap

    tasks = _random_tasks(3, 60, 10)
    boot = Bootstrap(tasks, 400, seed=0)
    for values, point in (
        (boot.pass_at_k(1, strong=True), analysis.mean_pass_at_k(tasks, 1, strong=True)),
        (boot.ceiling(), analysis.resampling_ceiling(tasks)),
        (boot.resampling_accuracy()[:, 4], analysis.resampling_accuracy(tasks, 5)),
        (boot.utilities(2.0)[:, 0], analysis.utility(tasks, 1, 2.0)),
    ):
        interval = boot.interval(values)
        assert interval.low < point < interval.high
        assert interval.high - interval.low < 0.3
    same = [_task(f"t{i}", "bbw-") for i in range(20)]
    interval = Bootstrap(same, 200, seed=1).interval(Bootstrap(same, 200, seed=1).ceiling())
    assert 0.0 < interval.low <= 2 / 3 <= interval.high < 1.0  # samples within a task vary
    k, utility = Bootstrap(same, 50, seed=2).optimal_k(100.0, abstain=True)
    assert set(k) <= {0.0, 1.0} and (utility[k == 0] == 0).all()
