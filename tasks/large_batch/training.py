"""Training one global batch size to the target: the loop every method runs (harness code).

One call trains a fresh model (the seed's initial weights, the same for every method and batch
size) with the method's optimizer at one peak rate and its schedule, until the held-out loss
reaches the target, the step cap is spent, or (a tuning trial) it can no longer beat the best
trial so far; it keeps the gradient norms the noise scale is estimated from. It is
data-parallel aware: with torch.distributed initialised, each rank takes its shard of every
global batch, the model is wrapped in DistributedDataParallel, and every decision (target,
divergence) is taken on values reduced across ranks, so all ranks agree.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType

import torch

from tasks.base import BudgetClock, MethodRun
from tasks.common.heldout import heldout_loss
from tasks.common.masking import IGNORE, Vocabulary, mask_tokens
from tasks.common.model import EncoderConfig, MaskedLanguageModel
from tasks.common.precision import autocast, resolve_precision
from tasks.large_batch import check_optimizer, parameter_groups
from tasks.large_batch.scaling import evaluation_steps, first_step_at_target

EVAL_BATCH = 64


@dataclass(frozen=True)
class SweepPoint:
    """What the harness fixes for one batch size: the same for every method."""

    batch_size: int
    step_cap: int
    micro_batch: int
    target_loss: float
    mask_rate: float
    eval_growth: float
    precision: str
    stop_at_target: bool = True
    give_up_after: int | None = None
    """Stop once this step is evaluated without reaching the target (a tuning trial that can no
    longer beat the best so far; the evaluation grid stays that of the step cap)."""


@dataclass
class BatchSizeResult:
    batch_size: int
    step_cap: int
    peak_rate: float
    seed: int
    evaluations: list[tuple[int, float]] = field(default_factory=list)
    """(step, held-out loss) on the evaluation grid, step 0 included; finite values only."""
    steps_run: int = 0
    timed_s: float = 0.0
    steps_to_target: int | None = None
    time_to_target_s: float | None = None
    diverged: str | None = None
    """Why the loss was declared diverged (None if it was not)."""
    gave_up: bool = False
    noise_pairs: list[tuple[int, int, float, int, float]] = field(default_factory=list)
    """(step, micro-batch, |G_micro|², global batch, |G_global|²) for every step with
    accumulation: the input of `scaling.noise_scale_near_target`."""

    @property
    def reached(self) -> bool:
        return self.steps_to_target is not None

    @property
    def final_loss(self) -> float | None:
        return self.evaluations[-1][1] if self.evaluations else None

    @property
    def throughput(self) -> float | None:
        """Training sequences per timed second, over every step run."""
        if self.steps_run == 0 or self.timed_s <= 0:
            return None
        return self.steps_run * self.batch_size / self.timed_s


class DataStream:
    """The training sequences as one seeded stream: shuffled epoch after epoch, consumed in
    order, so the first N examples are the same for every batch size, method and split."""

    def __init__(self, train: torch.Tensor, seed: int) -> None:
        self._train = train
        self._generator = torch.Generator().manual_seed(seed)
        self._order = torch.randperm(len(train), generator=self._generator)
        self._cursor = 0

    def take(self, count: int) -> torch.Tensor:
        rows = []
        while count > 0:
            if self._cursor == len(self._order):
                self._order = torch.randperm(len(self._train), generator=self._generator)
                self._cursor = 0
            chunk = self._order[self._cursor : self._cursor + count]
            rows.append(chunk)
            self._cursor += len(chunk)
            count -= len(chunk)
        return self._train[torch.cat(rows)]


def rank_and_world() -> tuple[int, int]:
    """(rank, world size); (0, 1) without an initialised process group."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _all_mean(value: float, device: torch.device, world: int) -> float:
    if world == 1:
        return value
    import torch.distributed as dist

    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return float(tensor) / world


def _squared_norm(parameters: list[torch.nn.Parameter]) -> float:
    grads = [p.grad for p in parameters if p.grad is not None]
    return float(sum(torch.sum(g.detach().float() ** 2) for g in grads))


def build_model(encoder: EncoderConfig, seed: int, device: torch.device) -> MaskedLanguageModel:
    """The harness's model with the run's initial weights (seeded, identical every time)."""
    torch.manual_seed(seed)
    return MaskedLanguageModel(encoder).to(device)


def train_to_target(
    point: SweepPoint,
    method: ModuleType,
    encoder: EncoderConfig,
    train: torch.Tensor,
    validation: torch.Tensor,
    vocabulary: Vocabulary,
    *,
    peak_rate: float,
    seed: int,
    device: str,
    clock: BudgetClock,
    run: MethodRun,
    on_evaluation: Callable[[int, float], None] = lambda step, loss: None,
) -> BatchSizeResult:
    """Train a fresh model at `point.batch_size` with the method's optimizer at `peak_rate`
    until the target, the step cap or `point.give_up_after`.

    Global batch = micro x accumulation x world size; each global batch is masked whole (one
    generator, the same draws whatever the split), then rank r takes rows [r*B/W, (r+1)*B/W).
    Each micro-batch's mean loss is weighted by its share of the global batch's masked tokens,
    so the accumulated gradient is that of the global mean loss for any split.
    """
    rank, world = rank_and_world()
    batch = point.batch_size
    micro = min(point.micro_batch, batch // world) if batch >= world else 0
    if micro == 0 or batch % (micro * world):
        raise ValueError(
            f"global batch {batch} cannot be split into micro-batches of {point.micro_batch}"
            f" over {world} ranks"
        )
    accumulation = batch // (micro * world)
    torch_device = torch.device(device)
    precision = resolve_precision(point.precision, torch_device)
    clip = run.hyperparameters.get("grad_clip")

    model = build_model(encoder, seed, torch_device)
    parameters = list(model.parameters())
    step_model: torch.nn.Module = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        ids = [torch_device.index] if torch_device.type == "cuda" else None
        step_model = DistributedDataParallel(model, device_ids=ids)
    result = BatchSizeResult(batch, point.step_cap, peak_rate, seed)
    grid = set(evaluation_steps(point.step_cap, point.eval_growth))
    stream = DataStream(train, seed)
    masking = torch.Generator().manual_seed(seed + 1)

    def evaluate(step: int) -> bool:
        """Record the held-out loss at `step`; True when training should stop."""
        with clock.untimed():
            loss = heldout_loss(model, validation, vocabulary, torch_device, EVAL_BATCH, precision)
            loss = _all_mean(loss, torch_device, world)
        if not math.isfinite(loss):
            result.diverged = f"held-out loss became {loss} after step {step}"
            return True
        result.evaluations.append((step, loss))
        on_evaluation(step, loss)
        if result.steps_to_target is None and loss <= point.target_loss:
            result.steps_to_target = first_step_at_target(result.evaluations, point.target_loss)
            result.time_to_target_s = result.timed_s
            return point.stop_at_target
        if point.give_up_after is not None and step >= point.give_up_after:
            result.gave_up = True
            return True
        return False

    stop = evaluate(0)
    model.train()
    started = clock.timed_s
    with clock.timed():
        decay, no_decay = (
            [p for p in parameters if p.ndim >= 2],
            [p for p in parameters if p.ndim < 2],
        )
        optimizer = method.configure_optimizer(
            parameter_groups(decay, no_decay), peak_rate=peak_rate, batch_size=batch, run=run
        )
        check_optimizer(optimizer, parameters)
        base_rates = [group["lr"] for group in optimizer.param_groups]
        for step in range(point.step_cap):
            if stop:
                break
            factor = float(method.learning_rate(step=step, batch_size=batch, run=run))
            for group, base in zip(optimizer.param_groups, base_rates, strict=True):
                group["lr"] = base * factor
            inputs, labels = mask_tokens(
                stream.take(batch),
                point.mask_rate,
                vocabulary.mask_id,
                vocabulary.special_ids,
                vocabulary.size,
                masking,
            )
            total_masked = int((labels != IGNORE).sum())
            shard = slice(rank * batch // world, (rank + 1) * batch // world)
            inputs, labels = inputs[shard], labels[shard]
            train_loss, small_sq = 0.0, None
            for index in range(accumulation):
                rows = slice(index * micro, (index + 1) * micro)
                micro_inputs, micro_labels = inputs[rows], labels[rows]
                masked = int((micro_labels != IGNORE).sum())
                sync = index == accumulation - 1
                context = (
                    step_model.no_sync() if world > 1 and not sync else contextlib.nullcontext()
                )
                with context:
                    with autocast(torch_device, precision):
                        if masked:
                            loss = step_model(
                                micro_inputs.to(torch_device), micro_labels.to(torch_device)
                            )
                        else:  # nothing to predict: a zero loss that still touches every weight
                            loss = sum(p.sum() for p in parameters) * 0.0
                    share = masked / max(total_masked, 1)
                    # DDP averages gradients over ranks; x world makes that a sum of shares.
                    (loss * share * world).backward()
                train_loss += float(loss.detach()) * share
                if index == 0 and accumulation > 1:
                    # The gradient of this micro-batch's own mean loss, before accumulation.
                    small_sq = _squared_norm(parameters) / (share * world) ** 2
            train_loss = _all_mean(train_loss, torch_device, world) * world
            if not math.isfinite(train_loss):
                result.diverged = f"training loss became {train_loss} at step {step + 1}"
                break
            if small_sq is not None:
                small_sq = _all_mean(small_sq, torch_device, world)
                result.noise_pairs.append((step, micro, small_sq, batch, _squared_norm(parameters)))
            if clip:
                torch.nn.utils.clip_grad_norm_(parameters, float(clip))
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            result.steps_run = step + 1
            result.timed_s = clock.timed_s - started
            if step + 1 in grid:
                stop = evaluate(step + 1)
        result.timed_s = clock.timed_s - started
    return result
