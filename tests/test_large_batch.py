"""Task `large-batch`: LAMB, NVLAMB and LARS against their papers' formulas written out by hand,
the scaling arithmetic and the bootstrap on known answers, a tuned sweep through the harness,
divergence at one batch size, and data-parallel equivalence (two gloo processes)."""

from __future__ import annotations

import itertools
import json
import math
import random
from pathlib import Path

import pytest
import torch
from conftest import assert_one_line_error, cli_json, run_cli

from tasks.large_batch.optimizers import Lamb, Lars
from tasks.large_batch.scaling import (
    NoiseScaleEstimator,
    bootstrap_interval,
    evaluation_steps,
    fit_critical_batch,
    geometric_mean,
    largest_batch_within_tolerance,
    log_grid,
    noise_scale_near_target,
    scaling_efficiencies,
)

# A sweep through the harness in seconds: a capped corpus, a small vocabulary, a one-layer
# encoder, three batch sizes and a target a few dozen steps away.
QUICK = ("--set", "batch_sizes=[8,16,32]", "--set", "micro_batch=8", "--set", "max_steps=40",
         "--set", "max_examples=640", "--set", "hidden_size=32", "--set", "num_layers=1",
         "--set", "intermediate_size=64", "--set", "eval_sequences=32", "--set", "vocab_size=512",
         "--set", "max_corpus_characters=300000", "--set", "target_loss=5.9",
         "--set", "rate_trials=2", "--set", "seeds=2")  # fmt: skip


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> dict[str, str]:
    # One thread: tiny matmuls on a shared 2-core machine are ten times slower with two.
    return {"BUDGETBENCH_CACHE_DIR": str(tmp_path_factory.mktemp("cache")), "OMP_NUM_THREADS": "1"}


def _lamb_step(x, g, m, v, t, *, lr, betas, eps, wd):
    """You et al. 2020, Algorithm 2, one step on one tensor, written out from the paper."""
    b1, b2 = betas
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
    r = m_hat / (torch.sqrt(v_hat) + eps)
    update = r + wd * x
    return x - lr * torch.linalg.norm(x) / torch.linalg.norm(update) * update, m, v


def _two_steps(optimizer_type, grads, **options):
    x = torch.nn.Parameter(torch.tensor([[1.0, -2.0], [0.5, 3.0]]))
    optimizer = optimizer_type([x], **options)
    seen = []
    for g in grads:
        x.grad = g.clone()
        optimizer.step()
        seen.append(x.detach().clone())
    return seen


def test_lamb_takes_algorithm_2s_steps_and_moves_each_tensor_by_lr_times_its_norm():
    x0 = torch.tensor([[1.0, -2.0], [0.5, 3.0]])
    g1, g2 = torch.tensor([[0.3, -0.1], [2.0, 0.05]]), torch.tensor([[-0.2, 0.4], [1.0, 0.3]])
    options = {"lr": 0.05, "betas": (0.9, 0.999), "eps": 1e-6, "weight_decay": 0.01}
    x1, x2 = _two_steps(Lamb, [g1, g2], **options)
    zero = torch.zeros_like(x0)
    hp = {"lr": 0.05, "betas": (0.9, 0.999), "eps": 1e-6, "wd": 0.01}
    want1, m, v = _lamb_step(x0, g1, zero, zero, 1, **hp)
    want2, _, _ = _lamb_step(want1, g2, m, v, 2, **hp)
    assert torch.allclose(x1, want1, atol=1e-6) and torch.allclose(x2, want2, atol=1e-6)
    # The trust ratio fixes the step's size at lr*|x| from the first step on (pytorch_optimizer
    # 4.1's Lamb moves 10x that at step 1: its bias correction comes after the trust ratio).
    assert float((x1 - x0).norm()) == pytest.approx(0.05 * float(x0.norm()), rel=1e-5)
    assert float((x2 - x1).norm()) == pytest.approx(0.05 * float(x1.norm()), rel=1e-5)


def test_nvlamb_pre_normalises_the_global_gradient_then_steps_as_lamb():
    """Eps is large here so the gradient's scale shows at step 1 (Adam's ratio is otherwise
    scale-free); the first gradient has norm 5 (divided by 5), the second 0.5 (left alone)."""
    g1, g2 = torch.tensor([[3.0, 0.0], [0.0, 4.0]]), torch.tensor([[0.3, 0.0], [0.4, 0.0]])
    options = {"lr": 0.1, "betas": (0.9, 0.99), "eps": 0.1, "weight_decay": 0.0}
    nv1, nv2 = _two_steps(Lamb, [g1, g2], grad_pre_normalization=1.0, **options)
    plain1, _ = _two_steps(Lamb, [g1, g2], **options)
    by_hand1, _ = _two_steps(Lamb, [g1 / 5, g2], **options)
    x0 = torch.tensor([[1.0, -2.0], [0.5, 3.0]])
    zero = torch.zeros_like(x0)
    hp = {"lr": 0.1, "betas": (0.9, 0.99), "eps": 0.1, "wd": 0.0}
    want1, m, v = _lamb_step(x0, g1 / 5, zero, zero, 1, **hp)
    want2, _, _ = _lamb_step(want1, g2, m, v, 2, **hp)
    assert torch.allclose(nv1, want1, atol=1e-6) and torch.allclose(nv2, want2, atol=1e-6)
    assert torch.allclose(nv1, by_hand1) and not torch.allclose(nv1, plain1, atol=1e-4)


def test_lamb_phi_bounds_clamp_the_weight_norm_and_a_zero_tensor_still_moves():
    x0 = torch.tensor([[1.0, -2.0], [0.5, 3.0]])
    g = torch.tensor([[0.3, -0.1], [2.0, 0.05]])
    (x1,) = _two_steps(Lamb, [g], lr=0.1, phi_bounds=(0.0, 1.0))
    assert float((x1 - x0).norm()) == pytest.approx(0.1 * 1.0, rel=1e-5)  # φ(|x|) = 1
    zero = torch.nn.Parameter(torch.zeros(3))
    optimizer = Lamb([zero], lr=0.1)
    zero.grad = torch.tensor([1.0, -1.0, 0.0])
    optimizer.step()  # |x| = 0: the trust ratio is 1, as in the authors' code
    assert float(zero.detach().norm()) > 0


def test_lars_takes_algorithm_1s_steps():
    """You et al. 2017, Algorithm 1: local rate η|w|/(|g| + β|w|), momentum on the scaled
    (g + βw), w -= v."""
    w0 = torch.tensor([[1.0, -2.0], [0.5, 3.0]])
    g1, g2 = torch.tensor([[0.3, -0.1], [2.0, 0.05]]), torch.tensor([[-0.2, 0.4], [1.0, 0.3]])
    lr, eta, beta, momentum = 2.0, 0.001, 0.01, 0.9
    w1, w2 = _two_steps(Lars, [g1, g2], lr=lr, trust_coefficient=eta, weight_decay=beta,
                        momentum=momentum)  # fmt: skip

    def local(w, g):
        return eta * w.norm() / (g.norm() + beta * w.norm())

    v1 = lr * local(w0, g1) * (g1 + beta * w0)
    want1 = w0 - v1
    v2 = momentum * v1 + lr * local(want1, g2) * (g2 + beta * want1)
    assert torch.allclose(w1, want1, atol=1e-6) and torch.allclose(w2, want1 - v2, atol=1e-6)
    # adapt=False: plain momentum SGD with weight decay.
    (plain,) = _two_steps(Lars, [g1], lr=0.1, weight_decay=beta, adapt=False)
    assert torch.allclose(plain, w0 - 0.1 * (g1 + beta * w0), atol=1e-6)


def test_log_grid_spans_the_declared_range_evenly_in_log():
    grid = log_grid(1e-3, 1e-1, 3)
    assert grid == pytest.approx([1e-3, 1e-2, 1e-1])
    assert log_grid(1e-3, 1e-1, 1) == pytest.approx([1e-2])


def test_bootstrap_interval_covers_the_truth_and_collapses_without_spread():
    rng = random.Random(1)
    samples = {64: [100 * math.exp(rng.gauss(0, 0.1)) for _ in range(20)]}
    low, high = bootstrap_interval(samples, lambda s: geometric_mean(s[64]), seed=0)
    assert low < 100 < high and high / low < 1.3
    same = bootstrap_interval({8: [5.0, 5.0, 5.0]}, lambda s: geometric_mean(s[8]), seed=0)
    assert same == pytest.approx((5.0, 5.0))
    assert bootstrap_interval({8: [1.0, 2.0]}, lambda s: None, seed=0) is None
    assert bootstrap_interval({8: [3.0], 16: [1.0, 2.0]}, lambda s: 1.0, seed=0) is None


def test_noise_scale_near_target_uses_only_the_last_fifth_of_the_steps():
    """Early steps carry a different (wrong) noise scale; only the window before the target
    counts."""
    pairs = [(step, 4, 1000.0, 64, 1000.0) for step in range(50)]  # no noise: excluded below
    # In the window: |G_4|² = |G|² + tr/4, |G_64|² = |G|² + tr/64 with |G|² = 1, tr = 16.
    pairs += [(step, 4, 1 + 16 / 4, 64, 1 + 16 / 64) for step in range(50, 100)]
    estimator = noise_scale_near_target(pairs, 100)
    assert estimator.pairs == 20 and estimator.noise_scale == pytest.approx(16.0)


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


def _curves(detail: dict) -> dict[str, dict[float, float]]:
    curves: dict[str, dict[float, float]] = {}
    for point in detail["curve_points"]:
        curves.setdefault(point["metric"], {})[point["x"]] = point["value"]
    return curves


def _artifact(detail: dict, name: str) -> Path:
    (artifact,) = [a for a in detail["artifacts"] if a["name"] == name]
    return Path(artifact["uri"].removeprefix("file://"))


def test_a_tuned_sweep_stores_every_trial_the_winning_rates_and_intervals(tmp_path, cache):
    result, db = run_sweep(tmp_path, cache, "--method", "adamw")
    assert result.returncode == 0, result.stderr
    (run,) = cli_json("runs", "--db", db)
    detail = cli_json("show", run["id"], "--db", db)
    scalars = {m["name"]: m["value"] for m in detail["measurements"]}
    curves = _curves(detail)
    assert set(curves["reached_target"]) == {8, 16, 32}
    assert set(curves["diverged"].values()) == {0.0}
    assert detail["gate_passed"] is True
    # Every trial is stored: 2 rates on adamw's declared log grid per batch size, then the
    # winning rate with 2 fresh seeds (not the tuning seed).
    from tasks.large_batch.methods.adamw import HYPERPARAMETERS

    rates = log_grid(*HYPERPARAMETERS["peak_rate_range"], 2)
    trials = json.loads(_artifact(detail, "trials.json").read_text())["trials"]
    for batch in (8, 16, 32):
        tuning = [t for t in trials if t["batch_size"] == batch and t["role"] == "tuning"]
        seeds = [t for t in trials if t["batch_size"] == batch and t["role"] == "seed"]
        assert sorted(t["peak_rate"] for t in tuning) == pytest.approx(rates)
        assert {t["seed"] for t in tuning} == {0} and {t["seed"] for t in seeds} == {10_000, 10_001}
        assert {t["peak_rate"] for t in seeds} == {curves["tuned_peak_rate"][batch]}
        reached = [t["steps_to_target"] for t in tuning if t["steps_to_target"] is not None]
        winner = next(t for t in tuning if t["peak_rate"] == curves["tuned_peak_rate"][batch])
        assert winner["steps_to_target"] == min(reached)
        for trial in tuning:  # a trial that could not win stopped at the winner's step
            if trial["stopped"] == "slower than the best trial":
                assert trial["steps_run"] <= winner["steps_to_target"]
        if curves["reached_target"][batch] == 1.0:
            steps = [t["steps_to_target"] for t in seeds]
            assert curves["steps_to_target"][batch] == pytest.approx(geometric_mean(steps))
            assert (
                curves["steps_to_target_low"][batch] - 1e-9
                <= curves["steps_to_target"][batch]
                <= curves["steps_to_target_high"][batch] + 1e-9
            )
        trajectory = curves[f"heldout_mlm_loss_b{batch}"]  # the winning trial's
        assert sorted(trajectory.items()) == [tuple(e) for e in winner["evaluations"]]
    # Efficiency never exceeds 1 by more than its interval: 1 is at or above the low end.
    for batch, efficiency in curves["scaling_efficiency"].items():
        low, high = (
            curves["scaling_efficiency_low"][batch],
            curves["scaling_efficiency_high"][batch],
        )
        assert low - 1e-9 <= efficiency <= high + 1e-9 and low <= 1.0 + 1e-9
    if "largest_batch_within_tolerance" in scalars:
        largest = scalars["largest_batch_within_tolerance"]
        assert scalars["steps_at_largest_batch"] == pytest.approx(
            curves["steps_to_target"][largest]
        )
    for name in ("steps_to_target.svg", "pareto.svg"):
        svg = _artifact(detail, name).read_text()
        assert "<svg" in svg and "$" not in svg  # plain tick labels, no raw mathtext
    assert "perfect scaling" in _artifact(detail, "steps_to_target.svg").read_text()
    shown = run_cli("show", run["id"], "--db", db, check=True).stdout
    per_batch = shown[shown.index("Per batch") :]
    assert "steps_to_target" in per_batch and "tuned_peak_rate" in per_batch


NAN_METHOD = """
import torch
HYPERPARAMETERS = {"peak_rate_range": [0.01, 0.02]}

def configure_optimizer(parameter_groups, peak_rate, batch_size, run):
    return torch.optim.SGD(parameter_groups, lr=peak_rate)

def learning_rate(step, batch_size, run):
    return float("nan") if batch_size == 16 and step >= 3 else 1.0
"""


def test_a_nan_at_one_batch_size_is_recorded_as_diverged_and_the_sweep_continues(tmp_path, cache):
    method = tmp_path / "nan_method.py"
    method.write_text(NAN_METHOD)
    result, db = run_sweep(tmp_path, cache, "--method", str(method))
    (run,) = cli_json("runs", "--db", db)
    detail = cli_json("show", run["id"], "--db", db)
    curves = _curves(detail)
    assert curves["diverged"] == {8: 0.0, 16: 1.0, 32: 0.0}
    trials = json.loads(_artifact(detail, "trials.json").read_text())["trials"]
    diverged = [t for t in trials if t["batch_size"] == 16]
    assert len(diverged) == 2 and all(t["stopped"] == "diverged" for t in diverged)
    for trial in diverged:  # evaluated every step until the NaN, finite values only
        assert [step for step, _ in trial["evaluations"]] == [0, 1, 2, 3]
    assert "heldout_mlm_loss_b16" not in curves  # no winning trial to show
    after = [t for t in trials if t["batch_size"] == 32]  # the next batch size trained on
    assert after and all(t["steps_run"] > 3 and not t["diverged"] for t in after)
    notes = detail["provenance"]["task_notes"]
    assert any(k.startswith("diverged_b16") and "nan" in v for k, v in notes.items())
    assert run["status"] == "succeeded" and result.returncode in (0, 3)


def test_a_method_without_a_search_space_is_rejected_before_anything_runs(tmp_path, cache):
    method = tmp_path / "pointwise.py"
    method.write_text(NAN_METHOD.replace('{"peak_rate_range": [0.01, 0.02]}', '{"lr": 0.01}'))
    result, db = run_sweep(tmp_path, cache, "--method", str(method))
    assert_one_line_error(result, 2, "peak_rate_range")
    assert not Path(db).exists()


def test_a_method_that_drops_parameters_is_rejected_before_anything_runs(tmp_path, cache):
    method = tmp_path / "frozen.py"
    method.write_text(NAN_METHOD.replace("SGD(parameter_groups", "SGD(parameter_groups[:1]"))
    result, db = run_sweep(tmp_path, cache, "--method", str(method))
    assert_one_line_error(result, 2, "every given parameter exactly once")
    assert not Path(db).exists()


def test_a_mirror_without_the_corpus_is_rejected_before_anything_runs(tmp_path, cache):
    mirror = tmp_path / "mirror"
    (mirror / "wikitext-2-raw").mkdir(parents=True)
    (mirror / "wikitext-2-raw" / "valid.txt").write_text(" = Title = \n")
    db = tmp_path / "s.db"
    result = run_cli("run", "large-batch", "--profile", "smoke", "--set", "corpus=wikitext-2-raw",
                     "--data-dir", str(mirror), "--db", str(db), env=cache)  # fmt: skip
    assert_one_line_error(result, 2, f"the data mirror lacks {mirror / 'wikitext-2-raw'}/train.txt")
    assert not db.exists()


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
    # One rate and one seed per batch size: the split by rank is what is compared.
    sizes = ("--set", "batch_sizes=[16,32]", "--set", "rate_trials=1", "--set", "seeds=1",
             "--method", "adamw")  # fmt: skip
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


def test_plots_draw_bands_the_perfect_scaling_line_and_the_pareto_fit():
    from tasks.large_batch.plot import SweepCurve, plot_pareto, plot_steps_to_target

    s_min, b_crit = 20.0, 100.0
    points = [("steps_to_target", b, s_min * (1 + b_crit / b)) for b in (16, 32, 64, 128, 256)]
    points += [("steps_to_target_low", b, 0.9 * v) for _, b, v in points]
    points += [("steps_to_target_high", b, 1.1 * v) for _, b, v in points[:5]]
    curve = SweepCurve.from_points("lamb <b>", points)
    assert curve.low[16] == pytest.approx(0.9 * s_min * (1 + b_crit / 16))
    steps_svg = plot_steps_to_target([curve], title="t")
    pareto_svg = plot_pareto([curve], title="t")
    assert "perfect scaling" in steps_svg and "lamb &lt;b&gt;" in steps_svg
    assert "B_crit 100" in pareto_svg and "B=256" in pareto_svg
    assert "$" not in steps_svg + pareto_svg  # plain tick labels, no raw mathtext
