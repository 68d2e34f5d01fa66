"""Task `large-batch`: steps- and time-to-target versus global batch size, per optimizer.

After You et al., "Large Batch Optimization for Deep Learning: Training BERT in 76 minutes"
(LAMB), McCandlish et al., "An Empirical Model of Large-Batch Training" (critical batch size,
gradient noise scale) and Nado et al., "A Large Batch Optimizer Reality Check" (a well-tuned
AdamW or Nesterov matches LAMB at large batch); the target-loss protocol follows MLPerf's BERT.

The frozen workload: cramming's BERT-style masked LM (a fixed architecture per profile, built by
the harness), cramming's corpus, tokenizer, packing and masking (the same code, in
`tasks.common`, with the same loaders and mirror rules), a fixed **target** held-out MLM loss, and
a sweep of global batch sizes.

The protocol is Shallue et al. 2018's ("Measuring the effects of data parallelism on neural
network training"): the optimizer is tuned **at every batch size**, the same way for every
method. A method declares a search space, not a point: `HYPERPARAMETERS["peak_rate_range"]`
(low, high) and its own warmup rule in `learning_rate(step, batch_size, run)`, which gets no horizon
(constant rate after warmup in the reference methods), so the schedule cannot anneal faster at a
large batch. For each batch size the harness tries `rate_trials` peak rates on a log grid over
the range (AlgoPerf's external tuning: a fixed trial budget, the same for every method), with
the run's seed; a trial that has not reached the target by the best trial's step is stopped (it
cannot win). The winning rate (fewest steps, then lowest loss at that step) is then trained
with `seeds` fresh seeds (other initial weights, data order and masks, so the selection does not
bias the reported steps): steps-to-target per batch size is the geometric mean over those seeds,
with a bootstrap interval, and a batch size counts as reached only when every seed reached the
target. One training runs until its held-out loss reaches the target or its step cap
`min(max_steps, max_examples / B)` is spent; the cap is a budget, the schedule never sees it.

Data order and evaluation are the harness's and identical for every method: the training
sequences are one seeded stream (epoch shuffles), consumed in order, so the first N examples are
the same whatever the batch size; each global batch is masked as a whole with a seeded generator
(so the split into micro-batches and devices does not change it); held-out loss (cramming's fixed
15% masking of the first `eval_sequences` held-out sequences) is measured untimed on a grid of
steps that depends only on the step cap (see `scaling.evaluation_steps`).

A global batch is reached by gradient accumulation of micro-batches of `micro_batch` sequences on
each of the data-parallel ranks: global = micro x accumulation x world size. The loss of a global
batch is the mean over all its masked tokens whatever the split, so one process and N processes
compute the same gradient (up to floating-point summation order). When torch.distributed is
initialised (the harness's torchrun executor), the task shards each global batch by rank, wraps
the model in DistributedDataParallel and reduces losses across ranks, so every rank takes the
same decisions.

Per batch size (curves with x = global batch size): tuned steps to target with its interval,
examples and timed seconds to target, the winning peak rate, final held-out loss, throughput,
the fraction of seeds that reached the target, divergence, scaling efficiency with its interval
and B_simple near the target loss; the held-out loss trajectory `heldout_mlm_loss_b<B>` of the
winning trial against steps. Per run (scalars): the tuned steps at the largest batch within
tolerance of perfect scaling (the ranking metric) with its interval, that batch, the fitted
critical batch size (S = S_min (1 + B_crit / B)) with a bootstrap interval, S_min and E_min, and
B_simple at the target loss (two-batch estimator, McCandlish et al. appendix A). Every trial
(rate, seed, steps, losses) is saved as the artifact `trials.json`, with two plots.

What is timed: optimizer construction and every training step. Not timed: data preparation,
model construction (the same initial weights for every method), evaluation; the noise-scale
norms' bookkeeping is inside the step (a few norms, small).

A batch size whose loss becomes NaN or infinite is recorded as diverged with its trajectory so
far, and the sweep continues. Quality gate: at least one batch size reached the target.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.base import GateResult, Method, Metric, RunContext, Task

# Held-out trajectories are stored per batch size under a declared name; batch sizes are powers
# of two up to this exponent.
MAX_BATCH_EXPONENT = 20
PRECISIONS = ("fp32", "bf16", "auto")


def trajectory_metric(batch_size: int) -> str:
    return f"heldout_mlm_loss_b{batch_size}"


def _is_power_of_two(value: int) -> bool:
    return isinstance(value, int) and value >= 1 and value & (value - 1) == 0


@dataclass(frozen=True)
class LargeBatchConfig:
    """One profile's settings (see suite/<version>/large-batch.toml)."""

    corpus: str
    max_corpus_characters: int
    vocab_size: int
    seq_len: int
    eval_sequences: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    target_loss: float
    batch_sizes: list[int]
    micro_batch: int
    max_steps: int
    max_examples: int
    rate_trials: int = 4
    seeds: int = 3
    mask_rate: float = 0.15
    eval_growth: float = 1.1
    min_scaling_efficiency: float = 0.5
    precision: str = "fp32"
    stop_at_target: bool = True

    def __post_init__(self) -> None:
        if not self.batch_sizes or not all(map(_is_power_of_two, self.batch_sizes)):
            raise TypeError("batch_sizes must be a non-empty list of powers of two")
        if max(self.batch_sizes) > 2**MAX_BATCH_EXPONENT:
            raise TypeError(f"batch sizes are at most 2**{MAX_BATCH_EXPONENT}")
        if sorted(set(self.batch_sizes)) != list(self.batch_sizes):
            raise TypeError("batch_sizes must be increasing, without repeats")
        if not _is_power_of_two(self.micro_batch):
            raise TypeError("micro_batch must be a power of two")
        if self.max_steps < 1 or self.max_examples < 1 or self.eval_sequences < 1:
            raise TypeError("max_steps, max_examples and eval_sequences must be positive")
        if self.rate_trials < 1 or self.seeds < 1:
            raise TypeError("rate_trials and seeds must be at least 1")
        if not self.target_loss > 0:
            raise TypeError("target_loss must be positive")
        if not 0 < self.mask_rate < 1 or not self.eval_growth > 1:
            raise TypeError("mask_rate must be in (0, 1) and eval_growth above 1")
        if not 0 < self.min_scaling_efficiency <= 1:
            raise TypeError("min_scaling_efficiency must be in (0, 1]")
        if self.precision not in PRECISIONS:
            raise TypeError(f"precision must be one of {PRECISIONS}")

    def step_cap(self, batch_size: int) -> int:
        """Optimizer steps allowed at `batch_size`: max_steps, fewer where max_examples binds."""
        return max(1, min(self.max_steps, self.max_examples // batch_size))


def _per_batch(name: str, unit: str, higher: bool, description: str) -> Metric:
    return Metric(name, unit, higher, description, x_unit="batch")


class LargeBatchTask(Task):
    name = "large-batch"
    description = "Steps and time to a target MLM loss across global batch sizes, per optimizer."
    config_type = LargeBatchConfig
    reference_methods = ("adamw", "lamb", "nvlamb", "lars", "sgd-nesterov")
    supports_data_parallel = True
    headline_metrics = (
        "steps_at_largest_batch",
        "steps_at_largest_batch_low",
        "steps_at_largest_batch_high",
        "largest_batch_within_tolerance",
        "critical_batch_size",
        "critical_batch_size_low",
        "critical_batch_size_high",
        "gradient_noise_scale",
    )
    metrics = (
        Metric(
            "steps_at_largest_batch",
            "steps",
            False,
            "tuned steps to target (geometric mean over seeds) at the largest batch within"
            " tolerance: the ranking metric",
        ),
        Metric("steps_at_largest_batch_low", "steps", False, "95% bootstrap interval, low end"),
        Metric("steps_at_largest_batch_high", "steps", False, "95% bootstrap interval, high end"),
        Metric(
            "largest_batch_within_tolerance",
            "examples",
            True,
            "largest global batch (and all smaller) within min_scaling_efficiency of perfect"
            " scaling from the smallest, tuned steps",
        ),
        Metric("critical_batch_size", "examples", True, "fitted B_crit of S = S_min(1+B_crit/B)"),
        Metric("critical_batch_size_low", "examples", True, "95% bootstrap interval, low end"),
        Metric("critical_batch_size_high", "examples", True, "95% bootstrap interval, high end"),
        Metric("fitted_min_steps", "steps", False, "fitted S_min (steps at infinite batch)"),
        Metric("fitted_min_examples", "examples", False, "fitted E_min = S_min * B_crit"),
        Metric(
            "gradient_noise_scale",
            "examples",
            True,
            "B_simple = tr(Sigma)/|G|^2 near the target loss, two-batch estimator pooled over"
            " the batch sizes with accumulation",
        ),
        Metric("min_steps_to_target", "steps", False, "fewest tuned steps to target, any batch"),
        Metric("batch_sizes_at_target", "batch sizes", True, "batch sizes that reached the target"),
        Metric(
            "batch_sizes_diverged", "batch sizes", False, "batch sizes where every trial diverged"
        ),
        _per_batch("steps_to_target", "steps", False, "tuned steps to target, geometric mean"),
        _per_batch("steps_to_target_low", "steps", False, "95% bootstrap interval, low end"),
        _per_batch("steps_to_target_high", "steps", False, "95% bootstrap interval, high end"),
        _per_batch("tuned_peak_rate", "rate", False, "the peak rate that won the search"),
        _per_batch("examples_to_target", "examples", False, "steps_to_target x batch size"),
        _per_batch("time_to_target_s", "s", False, "timed seconds to target, median over seeds"),
        _per_batch("final_loss", "nats", False, "held-out MLM loss at the end, median over seeds"),
        _per_batch("throughput", "examples/s", True, "training sequences per timed second"),
        _per_batch("reached_target", "fraction", True, "fraction of seeds that reached the target"),
        _per_batch("diverged", "0/1", False, "1 if every trial's loss became NaN or infinite"),
        _per_batch("scaling_efficiency", "ratio", True, "perfect-scaling steps / tuned steps"),
        _per_batch("scaling_efficiency_low", "ratio", True, "95% bootstrap interval, low end"),
        _per_batch("scaling_efficiency_high", "ratio", True, "95% bootstrap interval, high end"),
        _per_batch("noise_scale", "examples", True, "B_simple near the target at this batch"),
        *(
            Metric(
                trajectory_metric(2**k),
                "nats",
                False,
                f"held-out MLM loss against steps at global batch {2**k}, winning trial",
                x_unit="steps",
            )
            for k in range(MAX_BATCH_EXPONENT + 1)
        ),
    )

    def check_method(self, method: Method, config: Any) -> None:
        """Within the rules (beyond the interface's own checks, `interface.py`): the optimizer
        covers the given parameters exactly once (no frozen, dropped or extra tensors), the
        schedule is a finite non-negative factor, the rate range is ordered, and the method
        defines no function the task would silently ignore (a model, a data order)."""
        import torch

        for name in ("model_config", "data_order", "batch_size"):
            if hasattr(method.module, name):
                raise ValueError(f"{name}() is not part of this task's method interface")
        _, high = peak_rate_range(method.hyperparameters)
        weights = [torch.nn.Parameter(torch.ones(4, 4)), torch.nn.Parameter(torch.ones(4, 4))]
        norms = [torch.nn.Parameter(torch.ones(4))]
        batch = config.batch_sizes[-1]
        cap = config.step_cap(batch)
        run = method.new_run(seed=0, device="cpu")
        try:
            optimizer = method.module.configure_optimizer(
                parameter_groups(weights, norms), peak_rate=high, batch_size=batch, run=run
            )
            factors = [
                method.module.learning_rate(step=s, batch_size=batch, run=run)
                for s in (0, cap // 2, cap - 1)
            ]
        except Exception as exc:
            raise ValueError(f"the method raised {type(exc).__name__}: {exc}") from exc
        check_optimizer(optimizer, [*weights, *norms])
        if not all(isinstance(f, int | float) and math.isfinite(f) and f >= 0 for f in factors):
            raise ValueError("learning_rate() must return a finite, non-negative number")

    def check_inputs(self, config: Any, data_dir: Path | None) -> None:
        from tasks.common.corpus import check_mirror

        check_mirror(config.corpus, data_dir)

    def quality_gate(self, scalars: Mapping[str, float], config: Any) -> GateResult:
        if scalars.get("batch_sizes_at_target", 0) < 1:
            return GateResult(False, f"no batch size reached the target loss {config.target_loss}")
        return GateResult(True)

    def run(self, ctx: RunContext, method: Method) -> None:
        from tasks.large_batch.workload import run_large_batch

        run_large_batch(ctx, method)


def peak_rate_range(hyperparameters: Mapping[str, Any]) -> tuple[float, float]:
    """The method's declared search space for the peak rate: (low, high), 0 < low <= high."""
    bounds = hyperparameters.get("peak_rate_range")
    if (
        not isinstance(bounds, list | tuple)
        or len(bounds) != 2
        or not all(isinstance(b, int | float) and math.isfinite(b) and b > 0 for b in bounds)
        or bounds[0] > bounds[1]
    ):
        raise ValueError(
            "HYPERPARAMETERS['peak_rate_range'] must be [low, high], positive, low <= high"
        )
    return float(bounds[0]), float(bounds[1])


def parameter_groups(weights: list, norms_and_biases: list) -> list[dict[str, Any]]:
    """The groups a method receives: matrices and embeddings ("weights"), then vectors and
    scalars ("norms_and_biases", conventionally without weight decay or layer adaptation)."""
    return [
        {"name": "weights", "params": list(weights)},
        {"name": "norms_and_biases", "params": list(norms_and_biases)},
    ]


def check_optimizer(optimizer: Any, parameters: list) -> None:
    """The optimizer must hold every given parameter exactly once, and nothing else."""
    import torch

    if not isinstance(optimizer, torch.optim.Optimizer):
        raise ValueError(
            f"configure_optimizer must return a torch.optim.Optimizer, got {type(optimizer)}"
        )
    held = [id(p) for group in optimizer.param_groups for p in group["params"]]
    if sorted(held) != sorted(id(p) for p in parameters):
        raise ValueError(
            "configure_optimizer must optimise every given parameter exactly once (no frozen,"
            " dropped or extra tensors)"
        )
