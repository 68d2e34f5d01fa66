"""Task `large-batch`: the scaling arithmetic on known answers, a sweep through the harness,
divergence at one batch size, and data-parallel equivalence (two gloo processes)."""

from __future__ import annotations

import itertools
import math
import random
from pathlib import Path

import pytest
import torch
from conftest import assert_one_line_error, cli_json, run_cli

from tasks.large_batch.scaling import (
    NoiseScaleEstimator,
    evaluation_steps,
    fit_critical_batch,
    largest_batch_within_tolerance,
    scaling_efficiencies,
)

# A sweep through the harness in seconds: a capped corpus, a small vocabulary, a one-layer
# encoder, three batch sizes and a target a few dozen steps away.
QUICK = ("--set", "batch_sizes=[8,16,32]", "--set", "micro_batch=8", "--set", "max_steps=40",
         "--set", "max_examples=640", "--set", "hidden_size=32", "--set", "num_layers=1",
         "--set", "intermediate_size=64", "--set", "eval_sequences=32", "--set", "vocab_size=512",
         "--set", "max_corpus_characters=300000", "--set", "target_loss=5.9")  # fmt: skip


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> dict[str, str]:
    # One thread: tiny matmuls on a shared 2-core machine are ten times slower with two.
    return {"BUDGETBENCH_CACHE_DIR": str(tmp_path_factory.mktemp("cache")), "OMP_NUM_THREADS": "1"}


def test_critical_batch_fit_recovers_known_parameters_from_noisy_steps():
    rng = random.Random(0)
    s_min, b_crit = 120.0, 300.0
    steps = {
        b: s_min * (1 + b_crit / b) * math.exp(rng.gauss(0, 0.03))
        for b in (16, 64, 256, 1024, 4096)
    }
    fit = fit_critical_batch(steps)
    assert fit is not None
    assert fit.critical_batch == pytest.approx(b_crit, rel=0.15)
    assert fit.min_steps == pytest.approx(s_min, rel=0.1)
    assert fit.min_examples == pytest.approx(s_min * b_crit, rel=0.2)


def test_critical_batch_fit_declines_to_extrapolate_without_a_bend():
    perfect = {b: 10_000 / b for b in (16, 32, 64, 128)}  # linear scaling throughout
    assert fit_critical_batch(perfect) is None
    assert fit_critical_batch({16: 100.0, 32: 60.0}) is None  # too few points


def test_noise_scale_estimator_recovers_the_noise_of_a_known_problem():
    """Per-example gradients g_i = G + e_i with e_i ~ N(0, sigma^2 I): tr(Sigma) = d sigma^2, so
    B_simple = d sigma^2 / |G|^2. The estimator only sees norms of batch means."""
    generator = torch.Generator().manual_seed(0)
    dim, sigma = 50, 2.0
    mean_gradient = torch.full((dim,), 0.5)  # |G|^2 = 12.5, tr(Sigma) = 200: B_simple = 16
    estimator = NoiseScaleEstimator()
    small, big = 4, 64
    for _ in range(400):
        examples = mean_gradient + sigma * torch.randn(big, dim, generator=generator)
        small_norm = float(examples[:small].mean(0).square().sum())
        big_norm = float(examples.mean(0).square().sum())
        estimator.add(small, small_norm, big, big_norm)
    assert estimator.noise_scale == pytest.approx(dim * sigma**2 / 12.5, rel=0.15)


def test_scaling_efficiency_and_the_largest_batch_within_tolerance():
    steps = {16: 400, 32: 200, 64: 110, 128: 80, 256: 70}
    efficiency = scaling_efficiencies(steps)
    assert efficiency[16] == 1.0 and efficiency[32] == 1.0
    assert efficiency[128] == pytest.approx(400 * 16 / (80 * 128))
    sweep = [16, 32, 64, 128, 256, 512]
    assert largest_batch_within_tolerance(sweep, efficiency, 0.5) == 128
    # A batch size that missed the target ends the run of good ones.
    del efficiency[64]
    assert largest_batch_within_tolerance(sweep, efficiency, 0.5) == 32


def test_evaluation_grid_is_dense_early_geometric_later_and_ends_at_the_cap():
    grid = evaluation_steps(200, 1.1)
    assert grid[:10] == list(range(1, 11)) and grid[-1] == 200
    assert all(b / a <= 1.1 + 1 / a for a, b in itertools.pairwise(grid))
    assert evaluation_steps(1, 1.1) == [1]


def run_sweep(tmp_path: Path, cache: dict[str, str], *args: str):
    db = str(tmp_path / "s.db")
    return run_cli("run", "large-batch", "--db", db, *QUICK, *args, env=cache), db


def test_a_sweep_stores_per_batch_curves_and_derived_numbers(tmp_path, cache):
    result, db = run_sweep(tmp_path, cache, "--method", "adamw")
    assert result.returncode == 0, result.stderr
    (run,) = cli_json("runs", "--db", db)
    detail = cli_json("show", run["id"], "--db", db)
    scalars = {m["name"]: m["value"] for m in detail["measurements"]}
    curves: dict[str, dict[float, float]] = {}
    for point in detail["curve_points"]:
        curves.setdefault(point["metric"], {})[point["x"]] = point["value"]
    assert set(curves["reached_target"]) == {8, 16, 32}
    assert set(curves["diverged"].values()) == {0.0}
    reached = [b for b, v in curves["reached_target"].items() if v == 1.0]
    assert scalars["batch_sizes_at_target"] == len(reached) >= 1
    assert detail["gate_passed"] is True
    for batch in reached:
        steps = curves["steps_to_target"][batch]
        assert curves["examples_to_target"][batch] == steps * batch
        assert curves["time_to_target_s"][batch] > 0
        assert curves["final_loss"][batch] <= 5.9
        trajectory = curves[f"heldout_mlm_loss_b{int(batch)}"]
        assert trajectory[steps] <= 5.9 and all(v > 5.9 for s, v in trajectory.items() if s < steps)
    assert all(curves["throughput"][b] > 0 for b in (8, 16, 32))
    # Accumulation (global 16 and 32 over micro-batches of 8) measures the noise scale.
    assert set(curves["noise_scale"]) <= {16, 32} and "gradient_noise_scale" in scalars
    (artifact,) = detail["artifacts"]
    assert artifact["name"] == "steps_to_target.svg"
    svg = Path(artifact["uri"].removeprefix("file://")).read_text()
    assert "<svg" in svg and "perfect scaling" in svg
    shown = run_cli("show", run["id"], "--db", db, check=True).stdout
    per_batch = shown[shown.index("Per batch") :]
    assert "steps_to_target" in per_batch and artifact["uri"].removeprefix("file://") in shown


NAN_METHOD = """
import torch
HYPERPARAMETERS = {}

def configure_optimizer(parameter_groups, batch_size, max_steps):
    return torch.optim.SGD(parameter_groups, lr=0.01)

def learning_rate(step, batch_size, max_steps):
    return float("nan") if batch_size == 16 and step >= 3 else 1.0
"""


def test_a_nan_at_one_batch_size_is_recorded_as_diverged_and_the_sweep_continues(tmp_path, cache):
    method = tmp_path / "nan_method.py"
    method.write_text(NAN_METHOD)
    result, db = run_sweep(tmp_path, cache, "--method", str(method))
    (run,) = cli_json("runs", "--db", db)
    detail = cli_json("show", run["id"], "--db", db)
    curves: dict[str, dict[float, float]] = {}
    for point in detail["curve_points"]:
        curves.setdefault(point["metric"], {})[point["x"]] = point["value"]
    assert curves["diverged"] == {8: 0.0, 16: 1.0, 32: 0.0}
    partial = curves["heldout_mlm_loss_b16"]
    assert sorted(partial) == [0, 1, 2, 3]  # evaluated every step until the NaN
    assert all(math.isfinite(v) for v in partial.values())
    assert max(curves["heldout_mlm_loss_b32"]) > 3  # the next batch size trained on
    assert "nan" in detail["provenance"]["task_notes"]["diverged_b16"]
    assert run["status"] == "succeeded" and result.returncode in (0, 3)


def test_a_method_that_drops_parameters_is_rejected_before_anything_runs(tmp_path, cache):
    method = tmp_path / "frozen.py"
    method.write_text(NAN_METHOD.replace("SGD(parameter_groups", "SGD(parameter_groups[:1]"))
    result, db = run_sweep(tmp_path, cache, "--method", str(method))
    assert_one_line_error(result, 2, "every given parameter exactly once")
    assert not Path(db).exists()


def test_two_gloo_processes_reach_the_target_in_the_same_steps_as_one(tmp_path):
    """Tolerance: the same steps-to-target on the shared evaluation grid, and held-out losses
    within 1e-4 (the two runs differ only in floating-point summation order)."""
    from large_batch_ddp import train_tiny

    single = train_tiny(0, 1, str(tmp_path / "init"))
    torch.multiprocessing.spawn(_rank, args=(str(tmp_path),), nprocs=2, join=True)
    double = torch.load(tmp_path / "rank0.pt")
    assert single["steps_to_target"] is not None
    assert double["steps_to_target"] == single["steps_to_target"]
    assert [s for s, _ in double["evaluations"]] == [s for s, _ in single["evaluations"]]
    for (_, a), (_, b) in zip(double["evaluations"], single["evaluations"], strict=True):
        assert a == pytest.approx(b, abs=1e-4)
    # The noise scale pairs each rank's own micro-batch with the global batch: other samples than
    # one process's first micro-batch, so the two agree in expectation only.
    assert double["noise_scale"] > 0 and single["noise_scale"] > 0


def _rank(rank: int, folder: str) -> None:
    from large_batch_ddp import train_tiny

    result = train_tiny(rank, 2, folder + "/init")
    if rank == 0:
        torch.save(result, Path(folder) / "rank0.pt")


def test_torchrun_through_the_executor_matches_one_process(tmp_path, cache):
    """Issue 8's check: `--nproc-per-node 2` launches the sweep under torchrun (gloo here) and
    stores one run whose steps to target equal the single-process run's at the same global
    batch (the same data order, split by rank; losses agree to float rounding)."""
    sizes = ("--set", "batch_sizes=[16,32]", "--method", "adamw")
    single, db = run_sweep(tmp_path, cache, *sizes)
    assert single.returncode == 0, single.stderr
    parallel, _ = run_sweep(tmp_path, cache, *sizes, "--nproc-per-node", "2")
    assert parallel.returncode == 0, parallel.stderr
    runs = cli_json("runs", "--db", db)
    assert len(runs) == 2  # rank 1 stored nothing
    details = [cli_json("show", run["id"], "--db", db) for run in runs]
    assert sorted(d["provenance"].get("world_size", 1) for d in details) == [1, 2]
    steps = [
        {p["x"]: p["value"] for p in d["curve_points"] if p["metric"] == "steps_to_target"}
        for d in details
    ]
    assert steps[0] == steps[1] and steps[0]
