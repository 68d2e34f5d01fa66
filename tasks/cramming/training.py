"""The pretraining loop every method runs (harness code); it evaluates with `tasks.common.heldout`.

Clock rules (cramming's `pretrain.py`, which starts its clocks once the model is built): data
preparation, tokenizer training and building the model happen before the clock starts; the
method's optimizer set-up (stricter than cramming, which builds it before its clocks start),
compilation and every training step are timed; evaluation is untimed. The loop checks the clock
before each micro-batch and stops once the budget is spent, so a run overshoots by at most one
micro-batch, and it records by how much.

The method supplies `batch_size(progress, run)` (sequences per optimizer step, reached by gradient
accumulation over micro-batches) and `learning_rate(progress, step, run)` (a factor on the learning
rates its optimizer was built with); `progress` is the spent fraction of the budget, `step` the
number of optimizer steps taken so far (for step-based schedules such as BERT's). The first step
takes both at progress 0, as cramming's does (its batch ramp starts at one micro-batch and its
schedules at the moment the training engine is built, whatever set-up came before).

The micro-batch is an implementation setting, as cramming's `impl.microbatch_size` is, apart from
the recipe's batch: the profile's `micro_batch`, capped on a CPU so that one micro-batch costs at
most `CPU_MICRO_BATCH_FLOPS` (see `device_micro_batch`). With exact-count masking every
micro-batch has the same number of labels, so accumulating micro-batches gives the same gradient
as one large batch; the micro-batch only sets how finely a ramped batch is rounded up.

Training batches are masked with a fixed count per sequence (`mask_exact`, cramming's rule, so
shapes are static); the held-out evaluation keeps BERT's Bernoulli masking at 15 % with a fixed
seed (`tasks.common.heldout`), the same for every method and for earlier results.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType

import torch

from tasks.base import MethodRun, RunContext
from tasks.common.corpus import SequenceStream
from tasks.common.heldout import heldout_loss
from tasks.common.masking import Vocabulary, mask_exact, masked_per_sequence
from tasks.common.model import MaskedLanguageModel, training_flops_per_token
from tasks.common.precision import autocast, resolve_precision

CPU_MICRO_BATCH_FLOPS = 1.5e11
"""At most this many training FLOPs in one micro-batch on a CPU (about a second of the 2-core
CPU this project is developed on): two sequences of 128 tokens for the full-size reference
models, the profile's whole micro-batch for the scaled-down ones."""


class Diverged(RuntimeError):
    """The training loss became NaN or infinite."""


@dataclass(frozen=True)
class TrainingResult:
    steps: int
    micro_batches: int
    """Micro-batches trained, those of an accumulation cut by the budget included (cramming's
    `steps` count these)."""
    micro_batch: int
    tokens: int
    timed_s: float
    longest_step_s: float
    initial_heldout_loss: float
    """The untrained model's, before the clock starts (the curve's first point, at 0 s)."""
    final_heldout_loss: float
    """Measured once, at the end of the budget (it is also the curve's last point)."""


def epoch_order(
    method: ModuleType,
    run: MethodRun,
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
    order = torch.as_tensor(custom(train, epoch, generator, run), dtype=torch.long)
    if order.ndim != 1 or len(order) == 0 or order.min() < 0 or order.max() >= len(train):
        raise ValueError(f"data_order must return indices into the {len(train)} training sequences")
    return order


def device_micro_batch(
    requested: int, model: MaskedLanguageModel, seq_len: int, device: torch.device
) -> int:
    """The micro-batch the loop uses: the profile's, and on a CPU no more sequences than fit in
    `CPU_MICRO_BATCH_FLOPS` (at least one). A full-size model's 16-sequence micro-batch takes
    tens of seconds on a 2-core CPU, and cramming's ramped batch starts at one micro-batch, so
    a short budget would end inside the first step."""
    if device.type != "cpu":
        return requested
    per_sequence = training_flops_per_token(model) * seq_len
    return max(1, min(requested, int(CPU_MICRO_BATCH_FLOPS // per_sequence)))


def step_schedule(
    method: ModuleType, run: MethodRun, progress: float, steps: int, micro_batch: int
) -> tuple[int, float]:
    """The micro-batches to accumulate and the learning-rate factor for the optimizer step after
    `steps` steps, begun at `progress`: the method's `batch_size` rounded up to whole
    micro-batches, and its `learning_rate`. The first step takes both at progress 0, as
    cramming's does (its ramped batch starts at one micro-batch, its schedules when the training
    engine is built), whatever the set-up before it cost."""
    if steps == 0:
        progress = 0.0
    batch_size = int(method.batch_size(progress, run))
    if batch_size < 1:
        raise ValueError(f"method's batch_size({progress:.3f}) returned {batch_size}")
    return math.ceil(batch_size / micro_batch), float(method.learning_rate(progress, steps, run))


def _warm_up_optimizers() -> None:
    """Pay torch.optim's one-time initialisation (about a second of imports on first use) before
    the clock starts, so it is not charged to whichever method happens to run first."""
    parameter = torch.nn.Parameter(torch.zeros(1))
    parameter.grad = torch.zeros(1)
    for optimizer in (torch.optim.AdamW([parameter]), torch.optim.SGD([parameter], lr=0.1)):
        optimizer.step()


class BatchBuilder:
    """Training micro-batches, read and masked ahead of the loop on a background thread, or in
    the loop itself on a CPU.

    One producer with its own seeded generator, so the sequence of batches depends only on the
    seed (never on timing or on the thread). Every micro-batch has the same shape and the same
    number of labels per row (exact-count masking), so a compiled model sees one graph. An error
    in the producer (a bad `data_order`) is raised by `next()` in the training loop.

    The thread is for accelerators, where the host would otherwise wait while the device
    computes. On a CPU the host is the device: a second thread masking beside the training
    threads gains nothing and slows them (measured on the 2-core VM: the loop fell to 92-97 % of
    a plain loop's tokens/s), so `background=False` builds each batch when `next()` asks.
    """

    def __init__(
        self,
        method: ModuleType,
        run: MethodRun,
        train: torch.Tensor | SequenceStream,
        vocabulary: Vocabulary,
        micro_batch: int,
        mask_rate: float,
        seed: int,
        shuffle: bool,
        pin_memory: bool,
        background: bool = True,
        depth: int = 8,
    ) -> None:
        if isinstance(train, torch.Tensor) and len(train) < micro_batch:
            raise ValueError(
                f"{len(train)} training sequences cannot fill a micro-batch of {micro_batch}"
            )
        if not isinstance(train, torch.Tensor) and hasattr(method, "data_order"):
            raise ValueError("a streamed corpus is read in its own order: data_order cannot apply")
        self._batches = self._masked(
            method, run, train, vocabulary, micro_batch, mask_rate, seed, shuffle, pin_memory
        )
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=self._produce, daemon=True)
            self._thread.start()

    @staticmethod
    def _masked(
        method: ModuleType,
        run: MethodRun,
        train: torch.Tensor | SequenceStream,
        vocabulary: Vocabulary,
        micro_batch: int,
        rate: float,
        seed: int,
        shuffle: bool,
        pin: bool,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        generator = torch.Generator().manual_seed(seed)
        for batch in _sequences(method, run, train, micro_batch, generator, shuffle):
            inputs, labels = mask_exact(
                batch, rate, vocabulary.mask_id, vocabulary.special_ids, vocabulary.size, generator
            )
            yield (inputs.pin_memory(), labels.pin_memory()) if pin else (inputs, labels)

    def _produce(self) -> None:
        try:
            for item in self._batches:
                if self._stop.is_set():
                    return
                self._put(item)
        except BaseException as error:  # handed to the training loop, which raises it
            self._put(error)

    def _put(self, item: object) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._thread is None:
            return next(self._batches)
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def _sequences(
    method: ModuleType,
    run: MethodRun,
    train: torch.Tensor | SequenceStream,
    micro_batch: int,
    generator: torch.Generator,
    shuffle: bool,
) -> Iterator[torch.Tensor]:
    """Endless micro-batches of training sequences: epochs of a packed corpus in the method's or
    a shuffled order, or passes over a streamed one in its own order."""
    for epoch in itertools.count():
        produced = False
        if isinstance(train, SequenceStream):
            for rows in train.batches(micro_batch):
                produced = True
                yield torch.tensor(rows, dtype=torch.int32)
        else:
            order = epoch_order(method, run, train, epoch, generator, shuffle)
            for start in range(0, len(order) - micro_batch + 1, micro_batch):
                produced = True
                yield train[order[start : start + micro_batch]]
        if not produced:
            raise ValueError(f"epoch {epoch} has fewer training sequences than a micro-batch")


def _synchronize(device: torch.device) -> None:
    """Wait for queued device work, so the clock has paid for it (a no-op on a CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def pretrain(
    ctx: RunContext,
    model: MaskedLanguageModel,
    method: ModuleType,
    run: MethodRun,
    train: torch.Tensor,
    validation: torch.Tensor,
    vocabulary: Vocabulary,
    micro_batch: int,
    eval_points: int,
    check_weights: Callable[[], None],
) -> TrainingResult:
    """Train until the budget is spent, recording the held-out loss curve against timed seconds.

    Cramming's loop: the clock is checked before every micro-batch, so the run stops at most one
    micro-batch after the budget (an unfinished accumulation is dropped, never applied). A step's
    batch is the method's `batch_size` rounded up to whole micro-batches. The host waits for the
    device only at evaluation points and at the end (inside the timed region, so queued work is
    paid for); the training loss stays on the device until then, which is also when divergence
    is detected. The curve's first point is the untrained model (0 s, before the clock starts),
    its last is taken at the end of the budget and returned as the final held-out loss, so the
    end state is evaluated once.
    """
    device = torch.device(ctx.device)
    clock = ctx.clock
    budget = clock.budget_s
    assert budget is not None, "cramming profiles set budget_s"
    hp = run.hyperparameters
    precision = resolve_precision(hp.get("precision", "fp32"), device)
    mask_rate, clip = float(hp["mask_rate"]), hp.get("grad_clip")
    per_sequence = masked_per_sequence(mask_rate, validation.shape[1])
    eval_batch = micro_batch
    micro_batch = device_micro_batch(micro_batch, model, validation.shape[1], device)

    def evaluate() -> float:
        loss_at = heldout_loss(model, validation, vocabulary, device, eval_batch, precision)
        if not math.isfinite(loss_at):
            raise Diverged(f"held-out loss became {loss_at} after step {steps}")
        ctx.record_point("heldout_mlm_loss", clock.timed_s, loss_at)
        return loss_at

    steps = micro_steps = tokens = 0
    initial_heldout = evaluate()  # untimed: the untrained model, the quality gate's baseline
    _warm_up_optimizers()
    with clock.timed():  # building the optimizer and compiling count against the budget
        optimizer = method.configure_optimizer(model, run)
    check_weights()  # the harness's own rule check, untimed
    with clock.timed():
        base_rates = [group["lr"] for group in optimizer.param_groups]
        step_model, static_count = model, 0
        if hp.get("compile") and device.type == "cuda":
            # One graph: every micro-batch has the same shape and label count per row.
            step_model, static_count = torch.compile(model, fullgraph=True), per_sequence
        shuffle = not getattr(ctx.config, "sort_by_token_frequency", False)
        builder = BatchBuilder(
            method, run, train, vocabulary, micro_batch, mask_rate, ctx.seed, shuffle,
            pin_memory=device.type == "cuda", background=device.type != "cpu",
        )  # fmt: skip
    cast = autocast(device, precision) if precision == "bf16" else contextlib.nullcontext()

    longest = 0.0
    step_loss = torch.full((), math.nan, device=device)
    # The last checkpoint is the budget itself (budget * n / n may round just above it).
    checkpoints = [budget * (i + 1) / eval_points for i in range(eval_points - 1)] + [budget]
    model.train()
    progress_bar = iter(ctx.track(range(eval_points), "pretraining", total=eval_points))
    final_heldout = math.nan

    def checkpoint() -> None:
        nonlocal final_heldout
        while checkpoints and clock.timed_s >= checkpoints[0]:  # a long step passes several
            checkpoints.pop(0)
            next(progress_bar, None)
        train_loss = float(step_loss)  # the one host sync between evaluation points
        if steps and not math.isfinite(train_loss):
            raise Diverged(f"training loss became {train_loss} by step {steps}")
        final_heldout = evaluate()
        if steps:
            ctx.record_point("train_mlm_loss", clock.timed_s, train_loss)

    try:
        with clock.timed():  # one region: evaluation points step out of it (`untimed`)
            while not clock.exhausted:
                started = time.perf_counter()
                progress = min(1.0, clock.timed_s / budget)
                micro_batches, factor = step_schedule(method, run, progress, steps, micro_batch)
                for group, base in zip(optimizer.param_groups, base_rates, strict=True):
                    group["lr"] = base * factor
                accumulated = torch.zeros((), device=device)
                for index in range(micro_batches):
                    if index and clock.exhausted:  # cramming's rule: stop mid-accumulation
                        break
                    inputs, labels = builder.next()
                    with cast:
                        loss = step_model(
                            inputs.to(device, non_blocking=True),
                            labels.to(device, non_blocking=True),
                            static_count,
                        )
                    scaled = loss / micro_batches
                    scaled.backward()
                    accumulated += scaled.detach()
                    micro_steps += 1
                    tokens += inputs.numel()
                else:
                    if clip:
                        torch.nn.utils.clip_grad_norm_(model.parameters(), float(clip))
                    optimizer.step()
                    steps += 1
                    step_loss = accumulated
                optimizer.zero_grad(set_to_none=True)
                longest = max(longest, time.perf_counter() - started)  # a cut step counts too
                if clock.timed_s >= checkpoints[0] or clock.exhausted:
                    _synchronize(device)  # queued work is paid for before the clock is read
                    if clock.exhausted:
                        break
                    if clock.timed_s >= checkpoints[0]:
                        with clock.untimed():
                            checkpoint()
    finally:
        builder.close()
    checkpoint()  # the end state, once, with the clock stopped
    return TrainingResult(
        steps, micro_steps, micro_batch, tokens, clock.timed_s, longest, initial_heldout,
        final_heldout,
    )  # fmt: skip
