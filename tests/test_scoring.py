"""The aggregation rules of harness.score.rules, on hand-made numbers."""

from __future__ import annotations

import math

import pytest

from harness.score.rules import (
    SeedSummary,
    TaskEntry,
    aggregate_seeds,
    geometric_mean,
    is_ranked,
    performance_ratios,
    profile_score,
    run_counts,
    seed_rule,
    suite_score,
)


def test_median_below_five_seeds_olympic_mean_from_five():
    assert aggregate_seeds([3.0, 1.0, 100.0]) == 3.0
    assert aggregate_seeds([1.0, 2.0, 3.0, 4.0]) == 2.5
    # Five seeds: the lowest (1) and highest (100) are dropped, the rest averaged.
    assert aggregate_seeds([1.0, 2.0, 3.0, 4.0, 100.0]) == 3.0
    assert (seed_rule(4), seed_rule(5)) == ("median", "olympic mean")
    summary = SeedSummary.of([5.0, 1.0, 2.0, 3.0, 4.0, 9.0])
    assert (summary.value, summary.low, summary.high, summary.n) == (3.5, 1.0, 9.0, 6)
    with pytest.raises(ValueError):
        aggregate_seeds([])


def test_runs_missing_the_gate_are_failures_and_unrank_the_entry():
    assert run_counts("succeeded", True) and run_counts("succeeded", None)
    assert not run_counts("succeeded", False) and not run_counts("failed", None)
    assert is_ranked(succeeded=3, gate_missed=0)
    assert not is_ranked(succeeded=3, gate_missed=1) and not is_ranked(succeeded=0, gate_missed=0)


def _entry(task, entry, value, higher=True, ranked=True, reference=False):
    return TaskEntry(task, entry, value, ranked, higher, reference)


def test_ratios_to_the_best_entry_in_each_direction_with_ties_sharing_the_best():
    ratios = performance_ratios(
        [
            _entry("speed", "a", 10.0),
            _entry("speed", "b", 5.0),
            _entry("speed", "c", 10.0),  # tied with a
            _entry("loss", "a", 2.0, higher=False),
            _entry("loss", "b", 1.0, higher=False),
            _entry("loss", "c", 0.5, higher=False, ranked=False),  # missed the gate: not best
        ]
    )
    assert ratios["a"] == {"speed": 1.0, "loss": 2.0}
    assert ratios["b"] == {"speed": 2.0, "loss": 1.0}
    assert ratios["c"] == {"speed": 1.0, "loss": math.inf}


def test_profile_score_is_the_normalised_area_and_missing_tasks_count_as_infinite():
    tasks = ["t1", "t2"]
    assert profile_score({"t1": 1.0, "t2": 1.0}, tasks, tau_max=4.0) == 1.0
    # Ratio 2 on t1 covers τ in [2, 4] (2 of 3 units); t2 missing adds nothing: (2/3 + 0) / 2.
    assert profile_score({"t1": 2.0}, tasks, tau_max=4.0) == pytest.approx(1 / 3)
    assert profile_score({"t1": 5.0, "t2": math.inf}, tasks, tau_max=4.0) == 0.0
    assert profile_score({}, [], tau_max=4.0) == 0.0


def test_suite_score_geomean_of_speedups_over_the_reference_lists_missing_tasks():
    results = [
        _entry("speed", "ref", 10.0, reference=True),
        _entry("speed", "fast", 40.0),
        _entry("loss", "ref", 2.0, higher=False, reference=True),
        _entry("loss", "fast", 1.0, higher=False),
        _entry("speed", "partial", 20.0),
    ]
    score = suite_score(results, ["speed", "loss", "absent"], tau_max=4.0)
    by_name = {e.entry: e for e in score.entries}
    fast, ref, partial = by_name["fast"], by_name["ref"], by_name["partial"]
    assert fast.speedups == {"speed": 4.0, "loss": 2.0}
    assert fast.geomean_speedup == pytest.approx(math.sqrt(8.0))
    assert ref.geomean_speedup == pytest.approx(1.0)
    # A task nobody ran is missing for everyone; a partial entry's mean covers only its tasks.
    assert fast.tasks_missing == ["absent"] and not fast.complete
    assert partial.tasks_missing == ["loss", "absent"] and partial.speedups == {"speed": 2.0}
    assert fast.profile_score == pytest.approx(2 / 3)  # best on 2 of 3 tasks
    assert [e.entry for e in score.entries] == ["fast", "partial", "ref"]


def test_equal_profile_scores_keep_name_order_and_unranked_entries_get_no_speedup():
    results = [
        _entry("t", "zeta", 1.0),
        _entry("t", "alpha", 1.0),
        _entry("t", "ref", 1.0, reference=True),
        _entry("t", "broken", 5.0, ranked=False),
    ]
    score = suite_score(results, ["t"])
    assert [e.entry for e in score.entries] == ["alpha", "ref", "zeta", "broken"]
    broken = score.entries[-1]
    assert broken.profile_score == 0.0 and broken.geomean_speedup is None
    assert score.as_dict()["entries"][-1]["ratios"] == {"t": None}
    assert geometric_mean([]) is None
