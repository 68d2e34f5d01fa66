"""One large-batch run: prepare the corpus (untimed), train once per batch size of the sweep, then
record the per-batch-size curves, the derived scaling numbers and the plot. Imported only when a
run starts (it imports torch)."""

from __future__ import annotations

import statistics

from tasks.base import Method, RunContext
from tasks.cramming.model import EncoderConfig
from tasks.cramming.workload import prepare_pretraining_data
from tasks.large_batch import LargeBatchConfig, trajectory_metric
from tasks.large_batch.plot import SweepCurve, plot_steps_to_target
from tasks.large_batch.scaling import (
    fit_critical_batch,
    largest_batch_within_tolerance,
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


def run_large_batch(ctx: RunContext, method: Method) -> None:
    config: LargeBatchConfig = ctx.config
    data = prepare_pretraining_data(ctx)
    rank, world = rank_and_world()
    ctx.note("sequences", {"train": len(data.train), "validation": len(data.validation)})
    ctx.note("data_parallel", {"world_size": world, "micro_batch_per_rank": config.micro_batch})
    encoder = encoder_config(config, data.vocabulary.size)
    ctx.note("model_config", encoder.__dict__)

    results: list[BatchSizeResult] = []
    for batch in ctx.track(config.batch_sizes, "batch sizes", total=len(config.batch_sizes)):
        point = SweepPoint(
            batch_size=batch,
            step_cap=config.step_cap(batch),
            micro_batch=config.micro_batch,
            target_loss=config.target_loss,
            mask_rate=config.mask_rate,
            eval_growth=config.eval_growth,
            precision=config.precision,
            stop_at_target=config.stop_at_target,
        )
        name = trajectory_metric(batch)
        result = train_to_target(
            point,
            method.module,
            encoder,
            data.train,
            data.validation,
            data.vocabulary,
            seed=ctx.seed,
            device=ctx.device,
            clock=ctx.clock,
            on_evaluation=lambda step, loss, name=name: ctx.record_point(name, step, loss),
        )
        _record_batch_size(ctx, result)
        results.append(result)
    _record_derived(ctx, config, results)
    if rank == 0:
        _save_plot(ctx, method.name, results)


def _record_batch_size(ctx: RunContext, result: BatchSizeResult) -> None:
    batch = result.batch_size
    ctx.record_point("reached_target", batch, float(result.reached))
    ctx.record_point("diverged", batch, float(result.diverged is not None))
    if result.diverged:
        ctx.note(f"diverged_b{batch}", result.diverged)
    if result.reached:
        assert result.steps_to_target is not None and result.time_to_target_s is not None
        ctx.record_point("steps_to_target", batch, result.steps_to_target)
        ctx.record_point("examples_to_target", batch, result.steps_to_target * batch)
        ctx.record_point("time_to_target_s", batch, result.time_to_target_s)
    if result.final_loss is not None:
        ctx.record_point("final_loss", batch, result.final_loss)
    if result.throughput is not None:
        ctx.record_point("throughput", batch, result.throughput)
    if result.noise.noise_scale is not None:
        ctx.record_point("noise_scale", batch, result.noise.noise_scale)


def _record_derived(
    ctx: RunContext, config: LargeBatchConfig, results: list[BatchSizeResult]
) -> None:
    steps = {r.batch_size: r.steps_to_target for r in results if r.steps_to_target is not None}
    ctx.record("batch_sizes_at_target", len(steps))
    ctx.record("batch_sizes_diverged", sum(r.diverged is not None for r in results))
    if steps:
        ctx.record("min_steps_to_target", min(steps.values()))
    # A target met by the initial weights (0 steps) says nothing about scaling.
    efficiencies = scaling_efficiencies({b: s for b, s in steps.items() if s > 0})
    for batch, efficiency in efficiencies.items():
        ctx.record_point("scaling_efficiency", batch, efficiency)
    largest = largest_batch_within_tolerance(
        config.batch_sizes, efficiencies, config.min_scaling_efficiency
    )
    if largest is not None:
        ctx.record("largest_batch_within_tolerance", largest)
    fit = fit_critical_batch({b: float(s) for b, s in steps.items() if s > 0})
    if fit is None:
        ctx.note("critical_batch_fit", "no fit: fewer than 3 batch sizes at target or no bend")
    else:
        ctx.record("critical_batch_size", fit.critical_batch)
        ctx.record("fitted_min_steps", fit.min_steps)
        ctx.record("fitted_min_examples", fit.min_examples)
        ctx.note("critical_batch_fit", {"rms_log_error": fit.rms_log_error})
    scales = [r.noise.noise_scale for r in results if r.noise.noise_scale is not None]
    if scales:
        ctx.record("gradient_noise_scale", statistics.median(scales))


def _save_plot(ctx: RunContext, method_name: str, results: list[BatchSizeResult]) -> None:
    curve = SweepCurve(
        method_name,
        {r.batch_size: float(r.steps_to_target) for r in results if r.reached},
    )
    if not curve.steps_to_target:
        return
    ctx.artifact_dir.mkdir(parents=True, exist_ok=True)
    path = ctx.artifact_dir / "steps_to_target.svg"
    path.write_text(plot_steps_to_target([curve], title=f"large-batch: {method_name}"))
    ctx.save_artifact("steps_to_target.svg", path, media_type="image/svg+xml")
