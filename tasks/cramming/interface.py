"""The method interface of task `cramming`: a BERT-style encoder and its training recipe, under
a wall-clock budget.

The harness owns the corpus, the WordPiece tokenizer, sequences of `seq_len` tokens, the model
code (`tasks.common.model`), the masking, the training loop, the clock and every evaluation.
A method chooses, through the functions below: the architecture (an `EncoderConfig`), the
optimizer with its peak rates, the learning-rate factor and the batch size as functions of the
spent budget, optionally the order of the training sequences, and through its reserved
hyperparameters the masking rate, precision, compilation and gradient clipping.

Call order in one run: `model_config` once, then `configure_optimizer` once (both timed), then
per optimizer step `batch_size` and `learning_rate` (timed), and `data_order` once per epoch on
the data thread (timed). The same `run` is passed to every call; `run.budget_s` is the budget.

A method may: size and shape the encoder freely within `EncoderConfig`, build any
`torch.optim.Optimizer` (its own class included) over the model's parameters, and keep what it
needs between calls in `run.state`.
A method may not: change the model's weights or modules (`configure_optimizer` must leave them
as built; the harness checks a digest), see the held-out sequences or the evaluation, return a
config for another vocabulary or sequence length, or time anything itself: the budget is the
harness's clock, checked before every micro-batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tasks.base import MethodRun, Reserved, optional

if TYPE_CHECKING:
    import torch

    from tasks.common.model import EncoderConfig

RESERVED_HYPERPARAMETERS = {
    "mask_rate": Reserved(
        "The share of each training sequence's tokens corrupted (exactly round(rate x seq_len);"
        " 80 % [MASK], 10 % a random token, 10 % kept). Evaluation always masks 15 %.",
        bounds=(0.1, 0.4),
        required=True,
    ),
    "precision": Reserved(
        "Training precision: 'fp32', 'bf16' (autocast) or 'auto' (bf16 on a GPU, fp32 on a CPU).",
        types=(str,),
        choices=("fp32", "bf16", "auto"),
        default="fp32",
    ),
    "compile": Reserved(
        "True: train through torch.compile(fullgraph=True) on a GPU (timed; ignored on a CPU).",
        types=(bool,),
        default=False,
    ),
    "grad_clip": Reserved(
        "Clip the gradients' global L2 norm to this value before each optimizer step; None or"
        " absent: no clipping.",
        types=(float, type(None)),
        positive=True,
    ),
}


def model_config(
    vocab_size: int, max_seq_len: int, budget_s: float, run: MethodRun
) -> EncoderConfig:
    """Return a `tasks.common.model.EncoderConfig` with exactly this `vocab_size` and
    `max_seq_len` (an encoder-only transformer trained from scratch; any other type is refused
    before the run). `budget_s` is the run's budget in timed seconds. Called once, timed, and
    once more before the run (untimed) to check the type."""


def configure_optimizer(model: torch.nn.Module, run: MethodRun) -> torch.optim.Optimizer:
    """Return a `torch.optim.Optimizer` over the model's parameters, each group's `lr` its peak
    rate (the harness multiplies it by `learning_rate(...)` before every step). Do not change
    the model's weights here: the run fails if a weight changed."""


def learning_rate(progress: float, step: int, run: MethodRun) -> float:
    """Return the factor on every group's peak rate for the next optimizer step: `progress` is
    the spent fraction of the budget (0..1) when the step starts, `step` the optimizer steps
    taken so far (for step-based schedules such as BERT's)."""


def batch_size(progress: float, run: MethodRun) -> int:
    """Return the sequences per optimizer step at `progress` (>= 1): rounded up to whole
    micro-batches of the profile's size and reached by gradient accumulation."""


@optional
def data_order(
    sequences: torch.Tensor, epoch: int, generator: torch.Generator, run: MethodRun
) -> torch.Tensor:
    """Optional (a curriculum): return the indices of `sequences` (int32, (count, seq_len)) to
    train on in `epoch`, in order (a 1-D tensor of valid indices; repeats and omissions allowed).
    `generator` is the run's seeded torch.Generator. Without it the harness shuffles (or keeps
    the corpus order with `sort_by_token_frequency`). Not allowed with a streamed corpus."""
