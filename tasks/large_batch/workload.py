"""One large-batch run: prepare the corpus (untimed), then at each batch size of the sweep search
the peak rate and train the winner with fresh seeds, then record the per-batch-size curves, the
derived scaling numbers with their bootstrap intervals, every trial and the plots. Imported only
when a run starts (it imports torch)."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass

from tasks.base import Method, RunContext
from tasks.common.model import EncoderConfig
from tasks.common.pretraining_data import prepare_pretraining_data
from tasks.large_batch import LargeBatchConfig, peak_rate_range, trajectory_metric
from tasks.large_batch.plot import SweepCurve, plot_pareto, plot_steps_to_target
from tasks.large_batch.scaling import (
    NoiseScaleEstimator,
    bootstrap_interval,
    fit_critical_batch,
    geometric_mean,
    largest_batch_within_tolerance,
    log_grid,
    noise_scale_near_target,
    scaling_efficiencies,
)
from tasks.large_batch.training import BatchSizeResult, SweepPoint, rank_and_world, train_to_target

# Cramming's final architecture (tasks/cramming/methods/crammed_bert.py) without dropout, so a
# global batch gives the same gradient however it is split.
ARCHITECTURE = {
    "norm": "pre",
    "activation": "gated-gelu",
    "bias": False,
    "positions": "scaled-sinusoidal",
    "embedding_norm": True,
    "tie_embeddings": True,
    "sparse_prediction": True,
    "dropout": 0.0,
}


def encoder_config(config: LargeBatchConfig, vocab_size: int) -> EncoderConfig:
    """The frozen model of a profile: its sizes, cramming's architecture."""
    sizes = ("hidden_size", "num_layers", "num_heads", "intermediate_size")
    return EncoderConfig(
        vocab_size=vocab_size,
        max_seq_len=config.seq_len,
        **{name: getattr(config, name) for name in sizes},
        **ARCHITECTURE,
    )


SEED_STRIDE = 10_000


@dataclass
class TunedBatch:
    """One batch size after the search: every trial, the winning rate and the seed runs."""

    batch_size: int
    trials: list[BatchSizeResult]
    winner: BatchSizeResult | None
    seed_runs: list[BatchSizeResult]

    @property
    def seed_steps(self) -> list[float] | None:
        """Steps to target of the seed runs, or None unless every seed reached it."""
        if not self.seed_runs or not all(r.reached for r in self.seed_runs):
            return None
        return [float(r.steps_to_target) for r in self.seed_runs]  # type: ignore[arg-type]

    @property
    def diverged(self) -> bool:
        return bool(self.trials) and all(t.diverged for t in self.trials)


def run_large_batch(ctx: RunContext, method: Method) -> None:
    config: LargeBatchConfig = ctx.config
    data = prepare_pretraining_data(ctx)
    rank, world = rank_and_world()
    ctx.note("sequences", {"train": len(data.train), "validation": len(data.validation)})
    ctx.note("data_parallel", {"world_size": world, "micro_batch_per_rank": config.micro_batch})
    encoder = encoder_config(config, data.vocabulary.size)
    ctx.note("model_config", encoder.__dict__)
    rates = log_grid(*peak_rate_range(method.hyperparameters), config.rate_trials)
    # Fresh seeds, disjoint from any run's tuning seed and from other runs' fresh seeds.
    seeds = [SEED_STRIDE * (ctx.seed + 1) + k for k in range(config.seeds)]
    ctx.note("protocol", {"peak_rates_tried": rates, "tuning_seed": ctx.seed, "seeds": seeds})

    def train(batch: int, rate: float, seed: int, give_up_after: int | None) -> BatchSizeResult:
        point = SweepPoint(
            batch_size=batch,
            step_cap=config.step_cap(batch),
            micro_batch=config.micro_batch,
            target_loss=config.target_loss,
            mask_rate=config.mask_rate,
            eval_growth=config.eval_growth,
            precision=config.precision,
            stop_at_target=config.stop_at_target,
            give_up_after=give_up_after,
        )
        return train_to_target(
            point, method.module, encoder, data.train, data.validation, data.vocabulary,
            peak_rate=rate, seed=seed, device=ctx.device, clock=ctx.clock,
            run=method.new_run(seed, ctx.device),
        )  # fmt: skip

    tuned: list[TunedBatch] = []
    for batch in ctx.track(config.batch_sizes, "batch sizes", total=len(config.batch_sizes)):
        trials: list[BatchSizeResult] = []
        winner: BatchSizeResult | None = None
        for rate in _middle_out(rates):
            cutoff = winner.steps_to_target if winner is not None else None
            trial = train(batch, rate, ctx.seed, cutoff)
            trials.append(trial)
            if trial.reached and (winner is None or _beats(trial, winner)):
                winner = trial
        seed_runs = (
            [] if winner is None else [train(batch, winner.peak_rate, s, None) for s in seeds]
        )
        result = TunedBatch(batch, trials, winner, seed_runs)
        _record_batch_size(ctx, result)
        if winner is not None and len(rates) > 1 and winner.peak_rate in (rates[0], rates[-1]):
            ctx.note(f"tuned_rate_at_edge_b{batch}", f"the winning rate {winner.peak_rate:.4g} is"
                     " an end of the search range: the best rate may lie outside it")  # fmt: skip
        tuned.append(result)
    _record_derived(ctx, config, tuned)
    if rank == 0:
        _save_artifacts(ctx, method.name, config, tuned)


def _middle_out(rates: list[float]) -> list[float]:
    """The grid from its middle outwards. The winner does not depend on the order (a trial stops
    only once it can no longer win), but a good first trial sets an early cutoff for the rest,
    where a low first rate would run to the step cap."""
    middle = (len(rates) - 1) / 2
    return sorted(rates, key=lambda r: abs(rates.index(r) - middle))


def _beats(trial: BatchSizeResult, best: BatchSizeResult) -> bool:
    """Fewer steps to target; at equal steps (the same grid point), the lower held-out loss."""
    assert trial.steps_to_target is not None and best.steps_to_target is not None
    if trial.steps_to_target != best.steps_to_target:
        return trial.steps_to_target < best.steps_to_target
    return _loss_at(trial, trial.steps_to_target) < _loss_at(best, best.steps_to_target)


def _loss_at(result: BatchSizeResult, step: int) -> float:
    return dict(result.evaluations)[step]


def _record_batch_size(ctx: RunContext, tuned: TunedBatch) -> None:
    batch = tuned.batch_size
    ctx.record_point("diverged", batch, float(tuned.diverged))
    for trial in tuned.trials:
        if trial.diverged:
            ctx.note(f"diverged_b{batch}_rate{trial.peak_rate:.4g}", trial.diverged)
    if tuned.winner is None:
        ctx.record_point("reached_target", batch, 0.0)
        return
    runs = tuned.seed_runs
    ctx.record_point("tuned_peak_rate", batch, tuned.winner.peak_rate)
    ctx.record_point("reached_target", batch, sum(r.reached for r in runs) / len(runs))
    name = trajectory_metric(batch)
    for step, loss in tuned.winner.evaluations:
        ctx.record_point(name, step, loss)
    steps = tuned.seed_steps
    if steps is not None:
        mean = geometric_mean(steps)
        ctx.record_point("steps_to_target", batch, mean)
        ctx.record_point("examples_to_target", batch, mean * batch)
        interval = bootstrap_interval(
            {batch: steps}, lambda s: geometric_mean(s[batch]), seed=batch
        )
        if interval is not None:
            ctx.record_point("steps_to_target_low", batch, interval[0])
            ctx.record_point("steps_to_target_high", batch, interval[1])
        times = [r.time_to_target_s for r in runs if r.time_to_target_s is not None]
        ctx.record_point("time_to_target_s", batch, statistics.median(times))
    finals = [r.final_loss for r in runs if r.final_loss is not None]
    if finals:
        ctx.record_point("final_loss", batch, statistics.median(finals))
    timed = sum(r.timed_s for r in runs)
    if timed > 0:
        ctx.record_point("throughput", batch, sum(r.steps_run for r in runs) * batch / timed)
    noise = _noise_near_target(runs)
    if noise.noise_scale is not None:
        ctx.record_point("noise_scale", batch, noise.noise_scale)


def _noise_near_target(runs: list[BatchSizeResult]) -> NoiseScaleEstimator:
    """B_simple near the target, the sums pooled over runs that reached it."""
    pooled = NoiseScaleEstimator()
    for run in runs:
        if run.steps_to_target:
            near = noise_scale_near_target(run.noise_pairs, run.steps_to_target)
            pooled.trace_sum += near.trace_sum
            pooled.gradient_sum += near.gradient_sum
            pooled.pairs += near.pairs
    return pooled


def _record_derived(ctx: RunContext, config: LargeBatchConfig, tuned: list[TunedBatch]) -> None:
    # A target met by the initial weights (0 steps) says nothing about scaling.
    samples: dict[int, list[float]] = {}
    for t in tuned:
        steps = t.seed_steps
        if steps is not None and min(steps) > 0:
            samples[t.batch_size] = steps
    ctx.record("batch_sizes_at_target", len(samples))
    ctx.record("batch_sizes_diverged", sum(t.diverged for t in tuned))
    if not samples:
        return
    means = {b: geometric_mean(s) for b, s in samples.items()}
    ctx.record("min_steps_to_target", min(means.values()))
    efficiencies = scaling_efficiencies(means)
    smallest = min(samples)
    for batch, efficiency in efficiencies.items():
        ctx.record_point("scaling_efficiency", batch, efficiency)
        interval = bootstrap_interval(
            {smallest: samples[smallest], batch: samples[batch]},
            lambda s, b=batch: _efficiency(s, smallest, b),
            seed=batch,
        )
        if interval is not None:
            ctx.record_point("scaling_efficiency_low", batch, interval[0])
            ctx.record_point("scaling_efficiency_high", batch, interval[1])
    largest = largest_batch_within_tolerance(
        config.batch_sizes, efficiencies, config.min_scaling_efficiency
    )
    if largest is not None:
        ctx.record("largest_batch_within_tolerance", largest)
        ctx.record("steps_at_largest_batch", means[largest])
        interval = bootstrap_interval(
            {largest: samples[largest]}, lambda s: geometric_mean(s[largest]), seed=largest
        )
        if interval is not None:
            ctx.record("steps_at_largest_batch_low", interval[0])
            ctx.record("steps_at_largest_batch_high", interval[1])
    _record_critical_batch(ctx, samples, means)
    noise = _noise_near_target([r for t in tuned for r in t.seed_runs])
    if noise.noise_scale is not None:
        ctx.record("gradient_noise_scale", noise.noise_scale)


def _efficiency(samples: dict[int, list[float]], smallest: int, batch: int) -> float:
    reference = geometric_mean(samples[smallest]) * smallest
    return reference / (geometric_mean(samples[batch]) * batch)


def _critical_batch(samples: dict[int, list[float]]) -> float | None:
    fit = fit_critical_batch({b: geometric_mean(s) for b, s in samples.items()})
    return None if fit is None else fit.critical_batch


def _record_critical_batch(
    ctx: RunContext, samples: dict[int, list[float]], means: dict[int, float]
) -> None:
    fit = fit_critical_batch(means)
    if fit is None:
        ctx.note("critical_batch_fit", "no fit: fewer than 3 batch sizes at target or no bend")
        return
    ctx.record("critical_batch_size", fit.critical_batch)
    ctx.record("fitted_min_steps", fit.min_steps)
    ctx.record("fitted_min_examples", fit.min_examples)
    interval = bootstrap_interval(samples, _critical_batch, seed=0, resamples=CRITICAL_RESAMPLES)
    note = {"rms_log_error": fit.rms_log_error, "bootstrap_resamples": CRITICAL_RESAMPLES}
    if interval is None:
        note["interval"] = "none: fewer than half the resamples gave a fit"
    else:
        ctx.record("critical_batch_size_low", interval[0])
        ctx.record("critical_batch_size_high", interval[1])
    ctx.note("critical_batch_fit", note)


# Each resample refits B_crit (a 1-D search, a few ms in Python): fewer resamples than the rest.
CRITICAL_RESAMPLES = 400


def _trial_record(role: str, result: BatchSizeResult) -> dict:
    return {
        "batch_size": result.batch_size,
        "role": role,
        "peak_rate": result.peak_rate,
        "seed": result.seed,
        "steps_to_target": result.steps_to_target,
        "steps_run": result.steps_run,
        "stopped": (
            "diverged" if result.diverged
            else "reached" if result.reached
            else "slower than the best trial" if result.gave_up
            else "step cap"
        ),
        "diverged": result.diverged,
        "evaluations": result.evaluations,
    }  # fmt: skip


def _save_artifacts(
    ctx: RunContext, method_name: str, config: LargeBatchConfig, tuned: list[TunedBatch]
) -> None:
    """`trials.json` (every trial: the rate landscape per batch size), and the two plots."""
    ctx.artifact_dir.mkdir(parents=True, exist_ok=True)
    records = [_trial_record("tuning", r) for t in tuned for r in t.trials]
    records += [_trial_record("seed", r) for t in tuned for r in t.seed_runs]
    path = ctx.artifact_dir / "trials.json"
    path.write_text(json.dumps({"target_loss": config.target_loss, "trials": records}, indent=1))
    ctx.save_artifact("trials.json", path, media_type="application/json")
    curve = SweepCurve.from_seed_steps(method_name, {t.batch_size: t.seed_steps for t in tuned})
    if not curve.steps_to_target:
        return
    for name, svg in (
        ("steps_to_target.svg", plot_steps_to_target([curve], title=f"large-batch: {method_name}")),
        ("pareto.svg", plot_pareto([curve], title=f"large-batch: {method_name}")),
    ):
        path = ctx.artifact_dir / name
        path.write_text(svg)
        ctx.save_artifact(name, path, media_type="image/svg+xml")
