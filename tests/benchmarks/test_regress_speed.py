"""Speed of regression detection: run with `pytest tests/benchmarks --benchmark-only`.

`budgetbench regress` runs detection over every series of a store. 1,000 series of 500 points
(noise, steps, drifts, outliers mixed) must take well under 10 s on a 2-core machine; about 2 s
measured (PELT in ruptures' C kernel implementation; the Mann-Whitney test only runs for
candidates that pass the cheap effect-size check).
"""

from __future__ import annotations

import numpy as np

from harness.score.regressions import detect_steps

N_SERIES = 1_000
N_POINTS = 500
BUDGET_S = 10.0


def mixed_series(seed: int) -> list[np.ndarray]:
    """Noise everywhere; a 10 % step in half, a 30 % drift in a fifth, spikes in a tenth."""
    rng = np.random.default_rng(seed)
    series = []
    for i in range(N_SERIES):
        values = 100 * (1 + rng.uniform(0.01, 0.03) * rng.normal(size=N_POINTS))
        if i % 2:
            values[int(rng.integers(50, N_POINTS - 50)) :] *= rng.choice([0.9, 1.1])
        if i % 5 == 0:
            values *= np.linspace(1, 1.3, N_POINTS)
        if i % 10 == 0:
            values[rng.choice(N_POINTS, size=5, replace=False)] *= 2.0
        series.append(values)
    return series


def test_detection_over_a_thousand_series_of_500_points(benchmark):
    series = mixed_series(0)
    steps = benchmark.pedantic(
        lambda: [detect_steps(values) for values in series], rounds=3, iterations=1
    )
    assert [len(found) for found in steps] == [i % 2 for i in range(N_SERIES)]  # as planted
    assert benchmark.stats.stats.max < BUDGET_S
