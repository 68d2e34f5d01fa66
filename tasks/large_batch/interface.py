"""The method interface of task `large-batch`: an optimizer and its warmup rule, tuned by the
harness at every batch size.

A method is an optimizer family plus a search space. At each global batch size of the profile the
harness tries `rate_trials` peak rates on a log grid over `HYPERPARAMETERS["peak_rate_range"]`
(the same number of trials for every method), trains a fresh model with each (the task's fixed
masked LM, data stream, masking and evaluation) until the target held-out loss or the step cap,
keeps the rate with the fewest steps to target and re-trains it with fresh seeds. The method's
functions are called at the start of every one of those trainings (`configure_optimizer`) and
once per optimizer step (`learning_rate`); each training gets a fresh `run` (its seed is the
training's), so `run.state` never carries over between trainings.

A method may: build any `torch.optim.Optimizer` (its own class included) over the groups it is
given, set per-group options (weight decay, a per-group rate multiple, layer adaptation), choose
its warmup across batch sizes, and clip gradients through `HYPERPARAMETERS["grad_clip"]`.
A method may not: see or change the model, the data, the masking or the evaluation; freeze,
drop or add tensors (the optimizer must hold every given parameter exactly once); use the step
cap or any horizon (the schedule gets none, so no batch size anneals faster than another);
define `model_config`, `data_order` or `batch_size` (the task owns them), or set `mask_rate`.
What is timed: `configure_optimizer` and every training step, `learning_rate` included.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tasks.base import MethodRun, Reserved

if TYPE_CHECKING:
    import torch

RESERVED_HYPERPARAMETERS = {
    "peak_rate_range": Reserved(
        "[low, high]: the search space of the peak rate, tried on a log grid of `rate_trials`"
        " rates at every batch size (low <= high).",
        types=(list,),
        length=2,
        positive=True,
        required=True,
    ),
    "grad_clip": Reserved(
        "Clip the gradients' global L2 norm to this value before each optimizer step (after"
        " accumulation, across data-parallel ranks); None or absent: no clipping.",
        types=(float, type(None)),
        positive=True,
    ),
    "mask_rate": Reserved(
        "The masking rate is the task's (the profile's `mask_rate`), not a method's choice.",
        forbidden=True,
    ),
}


def configure_optimizer(
    parameter_groups: list[dict[str, Any]], peak_rate: float, batch_size: int, run: MethodRun
) -> torch.optim.Optimizer:
    """Return a `torch.optim.Optimizer` over exactly the parameters in `parameter_groups`.

    `parameter_groups` is `[{"name": "weights", "params": [...]}, {"name": "norms_and_biases",
    "params": [...]}]`: matrices and embeddings, then vectors and scalars (conventionally without
    weight decay or layer adaptation). Keep every parameter exactly once; regroup or set
    per-group options (`weight_decay`, `lr`) as you like. Each group's `lr` as built here is its
    peak rate: the harness multiplies it by `learning_rate(...)` before every step. `peak_rate`
    is the rate the harness is trying (from `peak_rate_range`), `batch_size` the global batch.
    Do not change the parameters' values.
    """


def learning_rate(step: int, batch_size: int, run: MethodRun) -> float:
    """Return the factor (finite, >= 0) on every group's peak rate for optimizer step `step`
    (0-based) at global batch `batch_size`: the method's warmup rule (e.g. linear over a fixed
    number of steps, or of examples). No horizon is given, so after warmup the factor should
    stay constant (1.0)."""
