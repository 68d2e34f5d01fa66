"""The pretraining loop every method runs, and the held-out evaluation (both harness code).

Clock rules (cramming's): data preparation and tokenizer training happen before the clock
starts; model construction, compilation and every training step are timed; evaluation is
untimed. The loop checks the clock before each optimizer step and stops once the budget is spent,
so a run overshoots by at most one step, and it records by how much.

The method supplies `batch_size(progress)` (sequences per optimizer step, reached by gradient
accumulation over micro-batches of the profile's size) and `learning_rate(progress)` (a factor on
the learning rates its optimizer was built with); `progress` is the spent fraction of the budget.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import torch

from tasks.base import RunContext
from tasks.cramming.masking import mask_tokens
from tasks.cramming.model import MaskedLanguageModel

EVAL_MASK_RATE = 0.15  # fixed, whatever rate a method trains with, so losses compare
EVAL_SEED = 1234


class Diverged(RuntimeError):
    """The training loss became NaN or infinite."""


@dataclass(frozen=True)
class TrainingResult:
    steps: int
    tokens: int
    timed_s: float
    longest_step_s: float
    final_heldout_loss: float
    """Measured once, at the end of the budget (it is also the curve's last point)."""


@dataclass(frozen=True)
class Vocabulary:
    mask_id: int
    special_ids: torch.Tensor
    size: int


def resolve_precision(precision: str, device: torch.device) -> str:
    """ "auto" is bf16 on a GPU and fp32 on a CPU (where bf16 matmuls are slow)."""
    if precision == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    return precision


def autocast(device: torch.device, precision: str):
    """bf16 autocast where asked for, else a no-op context."""
    enabled = precision == "bf16"
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


def epoch_order(
    method: ModuleType,
    train: torch.Tensor,
    epoch: int,
    generator: torch.Generator,
    shuffle: bool = True,
) -> torch.Tensor:
    """The order of the training sequences for one epoch: the method's `data_order` (a
    curriculum) if it defines one, else a seeded shuffle. Called inside the timed region, so a
    costly curriculum pays for itself."""
    custom = getattr(method, "data_order", None)
    if custom is None:
        if not shuffle:
            return torch.arange(len(train))
        return torch.randperm(len(train), generator=generator)
    order = torch.as_tensor(custom(train, epoch, generator), dtype=torch.long)
    if order.ndim != 1 or len(order) == 0 or order.min() < 0 or order.max() >= len(train):
        raise ValueError(f"data_order must return indices into the {len(train)} training sequences")
    return order


def _warm_up_optimizers() -> None:
    """Pay torch.optim's one-time initialisation (about a second of imports on first use) before
    the clock starts, so it is not charged to whichever method happens to run first."""
    parameter = torch.nn.Parameter(torch.zeros(1))
    parameter.grad = torch.zeros(1)
    for optimizer in (torch.optim.AdamW([parameter]), torch.optim.SGD([parameter], lr=0.1)):
        optimizer.step()


@torch.no_grad()
def heldout_loss(
    model: MaskedLanguageModel,
    sequences: torch.Tensor,
    vocabulary: Vocabulary,
    device: torch.device,
    batch_size: int,
    precision: str,
) -> float:
    """Mean MLM loss over the validation sequences with a fixed masking (same for every run)."""
    generator = torch.Generator().manual_seed(EVAL_SEED)
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(sequences), batch_size):
        batch = sequences[start : start + batch_size]
        inputs, labels = mask_tokens(
            batch,
            EVAL_MASK_RATE,
            vocabulary.mask_id,
            vocabulary.special_ids,
            vocabulary.size,
            generator,
        )
        masked = int((labels != -100).sum())
        if masked == 0:
            continue
        with autocast(device, precision):
            loss = model(inputs.to(device), labels.to(device))
        total += float(loss) * masked
        count += masked
    model.train(was_training)
    return total / max(count, 1)


def pretrain(
    ctx: RunContext,
    model: MaskedLanguageModel,
    method: ModuleType,
    train: torch.Tensor,
    validation: torch.Tensor,
    vocabulary: Vocabulary,
    micro_batch: int,
    eval_points: int,
    check_weights: Callable[[], None],
) -> TrainingResult:
    """Train until the budget is spent, recording the held-out loss curve against timed seconds.

    The curve's last point is taken at the end of the budget and returned as the final held-out
    loss, so the end state is evaluated once.
    """
    device = torch.device(ctx.device)
    clock = ctx.clock
    budget = clock.budget_s
    assert budget is not None, "cramming profiles set budget_s"
    hp = method.HYPERPARAMETERS
    precision = resolve_precision(hp.get("precision", "fp32"), device)
    mask_rate, clip = float(hp["mask_rate"]), hp.get("grad_clip")

    _warm_up_optimizers()
    with clock.timed():  # building the optimizer and compiling count against the budget
        optimizer = method.configure_optimizer(model)
        check_weights()
        base_rates = [group["lr"] for group in optimizer.param_groups]
        step_model = torch.compile(model) if hp.get("compile") and device.type == "cuda" else model

    generator = torch.Generator().manual_seed(ctx.seed)
    epoch = 0
    shuffle = not getattr(ctx.config, "sort_by_token_frequency", False)
    order = epoch_order(method, train, epoch, generator, shuffle)
    cursor = steps = tokens = 0
    longest = 0.0
    loss_value = math.nan
    # The last checkpoint is the budget itself (budget * n / n may round just above it).
    checkpoints = [budget * (i + 1) / eval_points for i in range(eval_points - 1)] + [budget]
    model.train()
    progress_bar = iter(ctx.track(range(eval_points), "pretraining", total=eval_points))
    final_heldout = math.nan

    def evaluate(steps: int, train_loss: float) -> float:
        loss_at = heldout_loss(model, validation, vocabulary, device, micro_batch, precision)
        if not math.isfinite(loss_at):
            raise Diverged(f"held-out loss became {loss_at} after step {steps}")
        ctx.record_point("heldout_mlm_loss", clock.timed_s, loss_at)
        if steps:
            ctx.record_point("train_mlm_loss", clock.timed_s, train_loss)
        return loss_at

    while not clock.exhausted:
        with clock.timed():
            started = time.perf_counter()
            progress = min(1.0, clock.timed_s / budget)
            batch_size = int(method.batch_size(progress))
            if batch_size < 1:
                raise ValueError(f"method's batch_size({progress:.3f}) returned {batch_size}")
            factor = float(method.learning_rate(progress))
            for group, base in zip(optimizer.param_groups, base_rates, strict=True):
                group["lr"] = base * factor
            micro_batches = math.ceil(batch_size / micro_batch)
            accumulated = 0.0
            for index in range(micro_batches):
                size = min(micro_batch, batch_size - index * micro_batch)
                if cursor + size > len(order):
                    epoch += 1
                    order, cursor = epoch_order(method, train, epoch, generator, shuffle), 0
                batch = train[order[cursor : cursor + size]]
                cursor += size
                inputs, labels = mask_tokens(
                    batch,
                    mask_rate,
                    vocabulary.mask_id,
                    vocabulary.special_ids,
                    vocabulary.size,
                    generator,
                )
                with autocast(device, precision):
                    loss = step_model(
                        inputs.to(device, non_blocking=True), labels.to(device, non_blocking=True)
                    )
                (loss * (size / batch_size)).backward()
                accumulated += float(loss.detach()) * size / batch_size
            if clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), float(clip))
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            steps += 1
            tokens += batch_size * train.shape[1]
            loss_value = accumulated
            if not math.isfinite(loss_value):
                raise Diverged(f"training loss became {loss_value} at step {steps}")
            longest = max(longest, time.perf_counter() - started)
        if checkpoints and clock.timed_s >= checkpoints[0]:  # untimed: outside the region
            while checkpoints and clock.timed_s >= checkpoints[0]:  # a long step may pass several
                checkpoints.pop(0)
                next(progress_bar, None)
            final_heldout = evaluate(steps, loss_value)
    if checkpoints:  # set-up spent the whole budget before a step: evaluate the end state once
        final_heldout = evaluate(steps, loss_value)
    return TrainingResult(steps, tokens, clock.timed_s, longest, final_heldout)
