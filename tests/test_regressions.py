"""Regression finding and group comparison: planted steps, noise, outliers, drifts, real rows."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from conftest import assert_one_line_error, cli_json, run_cli

from harness.run.machine import MachineFingerprint
from harness.run.runner import save_machine
from harness.score.regressions import (
    compare_groups,
    comparison_values,
    detect_steps,
    find_changes,
    load_series,
    software_diff,
)
from harness.store import Store, open_store
from harness.store.models import Measurement, Run

N_POINTS = 60
STEP = 0.10


def noisy_series(seed: int, n: int = N_POINTS, level: float = 100.0) -> np.ndarray:
    """A flat series with Gaussian noise of 1-2 % (the seed also draws the noise level)."""
    rng = np.random.default_rng(seed)
    relative_noise = rng.uniform(0.01, 0.02)
    return level * (1 + relative_noise * rng.normal(size=n))


def alarms(series: list[np.ndarray], **options) -> int:
    """How many of the series raise at least one alarm."""
    return sum(bool(detect_steps(values, **options)) for values in series)


# --- detection on synthetic series ---------------------------------------------------------


def test_planted_steps_are_found_at_their_index_with_their_sign():
    for seed in range(200):
        values = noisy_series(seed)
        rng = np.random.default_rng(10_000 + seed)
        index, sign = int(rng.integers(10, 50)), float(rng.choice([-1.0, 1.0]))
        values[index:] *= 1 + sign * STEP

        (step,) = detect_steps(values)
        assert abs(step.index - index) <= 2, (seed, step.index, index)
        assert np.sign(step.relative_change) == sign
        assert step.relative_change == pytest.approx(sign * STEP, abs=0.03)
        assert step.p_value <= 0.01


def test_noise_alone_raises_no_alarm():
    """False alarms over 500 noise-only series: 0 measured with the defaults."""
    assert alarms([noisy_series(seed) for seed in range(500)]) <= 1


def test_false_alarm_rate_stays_small_without_the_effect_size_floor():
    """With threshold 0 only PELT's penalty and the test guard: 2 of 500 measured (Gaussian)."""
    gaussian = [noisy_series(seed) for seed in range(500)]
    assert alarms(gaussian, threshold=0.0) <= 5

    rng = np.random.default_rng(7)
    heavy_tailed = [100 * (1 + 0.01 * rng.standard_t(3, N_POINTS)) for _ in range(500)]
    assert alarms(heavy_tailed, threshold=0.0) <= 10  # 2 of 500 measured


def test_single_outliers_are_not_steps():
    series = []
    for seed in range(300):
        values = noisy_series(seed)
        rng = np.random.default_rng(20_000 + seed)
        for index in rng.choice(N_POINTS, size=3, replace=False):
            values[index] *= rng.choice([0.3, 0.5, 1.5, 3.0])
        series.append(values)
    assert alarms(series) == 0


def test_a_short_blip_in_the_middle_is_not_a_step_but_one_at_the_end_is():
    """Blips of up to 3 runs are filtered mid-series; at the end they are the newest evidence."""
    values = noisy_series(1)
    values[30:33] *= 0.8
    assert detect_steps(values) == []

    values = noisy_series(1)
    values[-3:] *= 0.8
    (step,) = detect_steps(values)
    assert step.index == N_POINTS - 3 and step.relative_change < 0


def test_a_step_is_reported_once_three_runs_show_it():
    found_with = {}
    for after in (1, 2, 3):
        values = noisy_series(3)
        values[N_POINTS - after :] *= 1 - STEP
        found_with[after] = [step.index for step in detect_steps(values)]
    assert found_with == {1: [], 2: [], 3: [N_POINTS - 3]}


def test_slow_drift_raises_no_storm_of_alarms():
    """PELT cuts a ramp into small steps; none stands out from the trend, so none is reported."""
    for total in (0.05, 0.1, 0.2, 0.4):
        series = [noisy_series(seed) * np.linspace(1, 1 + total, N_POINTS) for seed in range(100)]
        counts = [len(detect_steps(values)) for values in series]
        assert max(counts) <= 1, (total, counts)
        assert sum(counts) <= 2, total  # 0 measured at every slope


def test_a_step_during_a_drift_is_still_found():
    for seed in range(100):
        values = noisy_series(seed) * np.linspace(1, 1.1, N_POINTS)
        values[35:] *= 1 - STEP
        (step,) = detect_steps(values)
        assert abs(step.index - 35) <= 2 and step.relative_change < 0


def test_a_regression_and_its_fix_are_two_steps():
    values = noisy_series(5)
    values[20:30] *= 1 - STEP
    steps = detect_steps(values)
    assert [(step.index, step.relative_change < 0) for step in steps] == [(20, True), (30, False)]
    assert steps[0].before == range(0, 20) and steps[0].after == range(20, 30)


def test_detection_does_not_depend_on_the_unit():
    values = noisy_series(11)
    values[25:] *= 1 + STEP
    expected = [step.index for step in detect_steps(values)]
    assert expected == [25]
    for scale in (1e-9, 1e-3, 1e6):
        assert [step.index for step in detect_steps(values * scale)] == expected


def test_constant_and_short_series_raise_nothing_and_a_clean_step_is_exact():
    assert detect_steps([5.0] * 40) == []
    assert detect_steps([1.0, 2.0, 3.0, 4.0, 5.0]) == []
    (step,) = detect_steps([5.0] * 20 + [6.0] * 10)
    assert (step.index, step.before_median, step.after_median) == (20, 5.0, 6.0)
    assert step.relative_change == pytest.approx(0.2)


# --- the store ------------------------------------------------------------------------------

START = datetime(2026, 3, 1, tzinfo=timezone.utc)
HARDWARE = {
    "cpu_model": "Test CPU",
    "cpu_logical_cores": 2,
    "cpu_physical_cores": 1,
    "ram_gib": 8,
    "architecture": "x86_64",
    "gpus": [],
}


def software(torch: str = "2.5.0", **changes) -> dict:
    return {
        "os": "Linux",
        "python": "3.11.7",
        "cuda": None,
        "packages": {"torch": torch, "numpy": "2.1.0"},
        **changes,
    }


def add_machine(store: Store, soft: dict, hardware: dict = HARDWARE) -> MachineFingerprint:
    fingerprint = MachineFingerprint(hardware=hardware, software=soft)
    save_machine(store, fingerprint)
    return fingerprint


def add_runs(
    store: Store,
    machine: MachineFingerprint,
    values: dict[str, list[float]],
    first_hour: int,
    status: str = "succeeded",
) -> list[str]:
    """One run per position of the value lists, an hour apart, with those measurements."""
    run_ids = []
    count = len(next(iter(values.values())))
    with store.session() as session:
        for i in range(count):
            run_id = uuid.uuid4().hex
            run_ids.append(run_id)
            session.add(
                Run(
                    id=run_id,
                    task="probe",
                    suite_version="v1",
                    spec_version=1,
                    task_spec_hash="spec1",
                    profile="smoke",
                    method_name="eager",
                    method_hash="method1",
                    seed=i,
                    device="cpu",
                    status=status,
                    settings={},
                    hyperparameters={},
                    provenance={},
                    machine_id=machine.id,
                    hardware_key=machine.hardware_key,
                    software_key=machine.software_key,
                    started_at=START + timedelta(hours=first_hour + i),
                    measurements=[
                        Measurement(
                            name=name,
                            value=float(series[i]),
                            unit="ms" if name.endswith("_ms") else "TFLOP/s",
                            higher_is_better=not name.endswith("_ms"),
                            samples=None,
                        )
                        for name, series in values.items()
                    ],
                )
            )
        session.commit()
    return run_ids


def torch_update_history(store: Store, slowdown: float) -> tuple[list[str], list[str]]:
    """20 runs on torch 2.5.0, then 20 on torch 2.6.0 whose matmul is `slowdown` slower."""
    old, new = add_machine(store, software("2.5.0")), add_machine(store, software("2.6.0"))
    values = noisy_series(42, n=40)
    before = add_runs(store, old, {"matmul_fp32_tflops": list(values[:20])}, first_hour=0)
    after = add_runs(
        store, new, {"matmul_fp32_tflops": list(values[20:] * (1 - slowdown))}, first_hour=20
    )
    return before, after


def test_a_slowdown_after_a_torch_update_is_one_regression_naming_torch(db_url):
    store = open_store(db_url)
    before, after = torch_update_history(store, slowdown=0.10)
    with store.session() as session:
        (change,) = find_changes(session)

    assert (change.task, change.profile, change.method_name, change.metric) == (
        "probe",
        "smoke",
        "eager",
        "matmul_fp32_tflops",
    )
    assert change.is_regression and change.relative_change == pytest.approx(-0.10, abs=0.03)
    assert change.at == START + timedelta(hours=20)
    assert change.runs_before == tuple(before) and change.runs_after == tuple(after)
    assert change.software_diff == {"packages.torch": ("2.5.0", "2.6.0")}
    assert change.software_before != change.software_after
    assert change.p_value <= 0.01 and change.unit == "TFLOP/s"


def test_the_same_torch_update_without_a_slowdown_reports_nothing(db_url):
    store = open_store(db_url)
    torch_update_history(store, slowdown=0.0)
    with store.session() as session:
        assert find_changes(session) == []


def test_only_succeeded_runs_count_and_hardware_and_since_filter(sqlite_url):
    store = open_store(sqlite_url)
    torch_update_history(store, slowdown=0.10)
    other_hardware = add_machine(store, software("2.6.0"), {**HARDWARE, "cpu_model": "Other CPU"})
    add_runs(store, other_hardware, {"matmul_fp32_tflops": list(noisy_series(1, n=30))}, 0)
    failed = add_machine(store, software("2.5.0"))
    add_runs(store, failed, {"matmul_fp32_tflops": [1.0] * 5}, 40, status="failed")

    with store.session() as session:
        assert len(find_changes(session)) == 1
        assert find_changes(session, hardware_key=other_hardware.hardware_key[:6]) == []
        assert find_changes(session, since=START + timedelta(hours=20)) == []
        (series,) = load_series(session, hardware_key=failed.hardware_key)
    assert len(series.points) == 40  # the failed runs' 1.0 values are not part of it
    assert series.values[:3] == pytest.approx(list(noisy_series(42, n=40)[:3]))
    assert all(point.started_at.tzinfo is not None for point in series.points)
    assert [p.started_at for p in series.points] == sorted(p.started_at for p in series.points)


def test_regressions_come_first_in_the_metrics_direction_then_by_size(sqlite_url):
    """Throughput up 30 % is an improvement; latency up 10 % and throughput down 10 % are not."""
    store = open_store(sqlite_url)
    old, new = add_machine(store, software("2.5.0")), add_machine(store, software("2.6.0"))
    base = {name: noisy_series(seed, n=40) for seed, name in enumerate(["a", "b_ms", "c"])}
    factors = {"a": 1.3, "b_ms": 1.1, "c": 0.9}
    add_runs(store, old, {name: list(v[:20]) for name, v in base.items()}, 0)
    add_runs(store, new, {name: list(v[20:] * factors[name]) for name, v in base.items()}, 20)
    with store.session() as session:
        changes = find_changes(session)
    assert [(c.is_regression, c.higher_is_better) for c in changes] == [
        (True, False) if changes[0].metric == "b_ms" else (True, True),
        (True, False) if changes[1].metric == "b_ms" else (True, True),
        (False, True),
    ]
    assert {changes[0].metric, changes[1].metric} == {"b_ms", "c"} and changes[2].metric == "a"
    assert abs(changes[0].relative_change) >= abs(changes[1].relative_change)


def test_software_diff_flattens_packages_and_marks_missing_entries():
    before = software("2.5.0", gpu_driver="550.54")
    after = software("2.6.0", gpu_driver="560.1")
    after["packages"]["triton"] = "3.2.0"
    assert software_diff(before, after) == {
        "gpu_driver": ("550.54", "560.1"),
        "packages.torch": ("2.5.0", "2.6.0"),
        "packages.triton": (None, "3.2.0"),
    }
    assert software_diff(before, before) == {}


# --- comparing two groups ---------------------------------------------------------------------


def test_a_clear_ten_percent_difference_is_a_ratio_with_an_interval_excluding_one():
    rng = np.random.default_rng(0)
    a, b = 100 + 2 * rng.normal(size=20), 110 + 2 * rng.normal(size=20)
    result = compare_groups(a, b)
    assert result.ratio == pytest.approx(1.1, abs=0.02)
    assert result.ci is not None and 1.0 < result.ci[0] < result.ratio < result.ci[1]
    assert result.p_value is not None and result.p_value < 1e-4
    assert compare_groups(a, b) == result  # seeded: reproducible


def test_identical_distributions_give_an_interval_containing_one():
    """A 95 % interval must contain 1 in about 95 % of draws: 94 of 100 measured (10 vs 10)."""
    contains_one = 0
    for seed in range(100):
        rng = np.random.default_rng(seed)
        a, b = 100 + 2 * rng.normal(size=10), 100 + 2 * rng.normal(size=10)
        result = compare_groups(a, b)
        assert result.ci is not None and result.p_value is not None
        contains_one += result.ci[0] <= 1.0 <= result.ci[1]
    assert contains_one >= 90

    same = compare_groups([1.0, 2.0, 3.0], [3.0, 1.0, 2.0])
    assert same.ratio == 1.0 and same.ci is not None and same.ci[0] <= 1.0 <= same.ci[1]


def test_a_group_of_one_has_a_ratio_but_no_interval_or_p_value():
    result = compare_groups([1.0], [1.2, 1.3])
    assert result.ratio == pytest.approx(1.25)
    assert (result.ci, result.p_value, result.n_a, result.n_b) == (None, None, 1, 2)
    with pytest.raises(ValueError):
        compare_groups([], [1.0])


def test_comparison_values_are_the_repetitions_when_stored():
    run = Run(
        measurements=[
            Measurement(name="with", value=2.0, samples=[1.0, 2.0, 3.0]),
            Measurement(name="without", value=5.0, samples=None),
        ]
    )
    assert comparison_values(run) == {"with": [1.0, 2.0, 3.0], "without": [5.0]}


def test_regress_fails_on_a_planted_slowdown_and_the_site_shows_it(tmp_path):
    db = str(tmp_path / "s.db")
    torch_update_history(open_store(db), slowdown=0.10)
    result = run_cli("regress", "--fail-on-regression", "--db", db)
    assert result.returncode == 1, result.stderr
    assert "regression" in result.stdout and "packages.torch 2.5.0 -> 2.6.0" in result.stdout
    (change,) = cli_json("regress", "--db", db)
    assert change["is_regression"] and change["metric"] == "matmul_fp32_tflops"
    assert (
        run_cli("regress", "--fail-on-regression", "--threshold", "15%", "--db", db).returncode == 0
    )

    run_cli("site", "build", "--db", db, "--out", str(tmp_path / "site"), check=True)
    page = (tmp_path / "site" / "regressions.html").read_text()
    assert "packages.torch 2.5.0 → 2.6.0" in page and ">regression<" in page
    assert f"{change['relative_change'] * 100:+.1f}%" in page
    machine = (tmp_path / "site" / "machines" / f"{change['hardware_key']}.html").read_text()
    assert "matmul_fp32_tflops (eager)" in machine
    import xml.etree.ElementTree as ElementTree

    atom = "{http://www.w3.org/2005/Atom}"
    feed = ElementTree.parse(tmp_path / "site" / "regressions.atom").getroot()
    (entry,) = feed.findall(f"{atom}entry")
    assert entry.find(f"{atom}title").text.startswith("Regression -")
    assert "packages.torch 2.5.0 → 2.6.0" in entry.find(f"{atom}summary").text
    (record,) = json.loads((tmp_path / "site" / "regressions.json").read_text())
    assert record["software_diff"] == "packages.torch 2.5.0 -> 2.6.0"


def test_regress_passes_without_the_step(tmp_path):
    db = str(tmp_path / "s.db")
    torch_update_history(open_store(db), slowdown=0.0)
    result = run_cli("regress", "--fail-on-regression", "--db", db)
    assert result.returncode == 0 and "no significant changes" in result.stdout


def test_compare_groups_by_software_key(tmp_path):
    db = str(tmp_path / "s.db")
    store = open_store(db)
    torch_update_history(store, slowdown=0.10)
    old = MachineFingerprint(hardware=HARDWARE, software=software("2.5.0")).software_key
    new = MachineFingerprint(hardware=HARDWARE, software=software("2.6.0")).software_key
    (slower,) = cli_json("compare", f"software={old}", f"software={new}", "--db", db)
    assert slower["verdict"] == "worse" and slower["comparison"]["n_a"] == 20
    assert slower["comparison"]["ratio"] == pytest.approx(0.90, abs=0.03)
    (same,) = cli_json("compare", f"software={old}", f"software={old}", "--db", db)
    assert same["verdict"] == "no significant difference"
    result = run_cli("compare", "method=nothing", f"software={old}", "--db", db)
    assert_one_line_error(result, 2, "no succeeded runs match 'method=nothing'")
