"""Task `cramming`: pretrain a BERT-style masked LM from scratch under a wall-clock budget.

After Geiping & Goldstein, "Cramming: Training a Language Model on a Single GPU in One Day". The
harness owns the data (corpus, WordPiece tokenizer, sequences of 128 tokens), the model code, the
training loop, the clock and the evaluation; a method chooses the architecture through an
`EncoderConfig`, the optimizer, the learning-rate and batch-size schedules, the masking rate and,
optionally, the data order (`data_order(sequences, epoch, generator)`: a curriculum).

Data options (profile settings, as in cramming's data pipeline): `filter_max_unknown` drops
training sequences whose share of `[UNK]` tokens exceeds it; `sort_by_token_frequency` orders the
training sequences from the most to the least common mean token frequency and turns off the
shuffle (a method's `data_order` still takes precedence).

What is timed: model construction, optimizer set-up, compilation and every training step. What is
not: corpus preparation, tokenizer training, the held-out evaluations and the downstream scoring.
The loop stops once the budget is spent (it overshoots by at most one step, recorded as
`budget_overshoot_s`).

Held-out loss: the mean MLM cross-entropy (nats per masked token) on the validation split's
sequences, masked at 15% with a fixed seed, identical for every method; measured at
`eval_points` evenly spaced moments of the budget (the curve) and at the end.

Throughput and utilisation: tokens/s counts every token of every training sequence over the timed
seconds; FLOPs per token are 6·N + 12·L·H·S (N non-embedding parameters; L layers, H hidden size,
S sequence length); MFU divides tokens/s × FLOPs per token by the device's peak: a table of dense
bf16 tensor-core peaks for known GPUs, otherwise a matmul rate measured on the spot (untimed) in
the training precision.

Downstream: GLUE fine-tuning with cramming's fixed protocol (scores ×100, average of the tasks'
main scores), or, for the offline smoke profile, the shuffled-sentence probe (is a sentence in its
original word order?) on held-out sentences of the corpus, reported apart from GLUE. A GLUE
evaluation with example caps or fewer than all tasks is recorded as `glue_capped_*`, never as
`glue_*`, so it cannot be mistaken for full GLUE (the run's notes list the caps).

Quality gate: the final held-out loss must beat a uniform guess (ln of the vocabulary size).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.base import Consistency, GateResult, Method, MethodFunction, Metric, RunContext, Task

GLUE_TASKS = ("cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte")
# MNLI is fine-tuned once and scored on two dev sets, so it gives two entries.
GLUE_ENTRIES = ("cola", "sst2", "mrpc", "stsb", "qqp", "mnli_m", "mnli_mm", "qnli", "rte")
MASK_RATE_BOUNDS = (0.1, 0.4)
DOWNSTREAMS = ("shuffle-probe", "glue", "none")


@dataclass(frozen=True)
class CrammingConfig:
    """One profile's settings (see suite/<version>/cramming.toml)."""

    corpus: str
    max_corpus_characters: int
    vocab_size: int
    seq_len: int
    budget_s: float
    micro_batch: int
    eval_points: int
    eval_sequences: int
    downstream: str
    probe_sentences: int = 0
    glue_tasks: list[str] = field(default_factory=list)
    glue_max_train_examples: int = 0
    glue_max_dev_examples: int = 0
    finetune_epochs: int = 5
    finetune_learning_rate: float = 4e-5
    filter_max_unknown: float = 1.0
    sort_by_token_frequency: bool = False

    @property
    def glue_is_capped(self) -> bool:
        """Fewer than all GLUE tasks, or an example cap: scores go under `glue_capped_*`."""
        complete = set(self.glue_tasks) == set(GLUE_TASKS)
        return not complete or bool(self.glue_max_train_examples or self.glue_max_dev_examples)

    def __post_init__(self) -> None:
        if self.downstream not in DOWNSTREAMS:
            raise TypeError(f"downstream must be one of {DOWNSTREAMS}")
        unknown = [t for t in self.glue_tasks if t not in GLUE_TASKS]
        if unknown:
            raise TypeError(f"unknown GLUE task {unknown[0]!r} (known: {', '.join(GLUE_TASKS)})")
        if self.budget_s <= 0 or self.micro_batch < 1 or self.eval_points < 1:
            raise TypeError("budget_s, micro_batch and eval_points must be positive")
        if not 0.0 <= self.filter_max_unknown <= 1.0:
            raise TypeError("filter_max_unknown must be between 0 and 1")
        if not 1 <= self.finetune_epochs <= 5:
            raise TypeError("finetune_epochs must be 1 to 5 (cramming's rule: at most 5)")


class CrammingTask(Task):
    name = "cramming"
    description = "BERT-style MLM pretraining from scratch under a wall-clock budget, then GLUE."
    config_type = CrammingConfig
    reference_methods = ("crammed-bert", "bert-original")
    consistency = Consistency(
        final_is_last_point={"final_mlm_loss": "heldout_mlm_loss"},
        timed_seconds_metric="budget_used_s",
    )
    headline_metrics = (
        "final_mlm_loss",
        "glue_average",
        "glue_capped_average",
        "shuffle_probe_accuracy",
        "tokens_per_s",
        "mfu",
        "steps",
        "peak_memory_mib",
    )
    metrics = (
        Metric("final_mlm_loss", "nats", False, "held-out MLM loss at the end of the budget"),
        Metric("heldout_mlm_loss", "nats", False, "held-out MLM loss during training", x_unit="s"),
        Metric("train_mlm_loss", "nats", False, "training loss of the last step", x_unit="s"),
        Metric("tokens_per_s", "tokens/s", True, "training tokens per timed second"),
        Metric("mfu", "%", True, "model FLOPs utilisation against the device's peak"),
        Metric("steps", "steps", True, "optimizer steps within the budget"),
        Metric("budget_used_s", "s", False, "timed seconds spent"),
        Metric("budget_overshoot_s", "s", False, "timed seconds beyond the budget (< one step)"),
        Metric("longest_step_s", "s", False, "slowest optimizer step"),
        Metric(
            "peak_memory_mib",
            "MiB",
            False,
            "peak device memory (on a CPU: process RSS during training)",
        ),
        Metric("flops_per_token", "FLOP", False, "training FLOPs per token, 6N + 12LHS"),
        Metric("parameters", "parameters", False, "trainable parameters"),
        Metric("shuffle_probe_accuracy", "%", True, "smoke downstream: original vs shuffled order"),
        *(Metric(f"glue_{t}", "score", True, f"GLUE {t} main score x100") for t in GLUE_ENTRIES),
        Metric("glue_average", "score", True, "mean of the GLUE tasks' main scores"),
        *(
            Metric(f"glue_capped_{t}", "score", True, f"GLUE {t}, capped examples, x100")
            for t in GLUE_ENTRIES
        ),
        Metric("glue_capped_average", "score", True, "mean over a capped or partial GLUE"),
    )
    method_interface = (
        MethodFunction(
            "model_config",
            ("vocab_size", "max_seq_len", "budget_s"),
            "Return a tasks.cramming.model.EncoderConfig with the given vocab_size and max_seq_len;"
            " the budget lets a method size its model.",
        ),
        MethodFunction(
            "configure_optimizer",
            ("model",),
            "Return a torch.optim.Optimizer over the model's parameters, with its peak learning"
            " rates; the model's weights must not be changed here.",
        ),
        MethodFunction(
            "learning_rate",
            ("progress",),
            "Factor on the optimizer's learning rates at `progress`, the spent fraction of the"
            " budget (0..1).",
        ),
        MethodFunction(
            "batch_size",
            ("progress",),
            "Sequences per optimizer step at `progress`; reached by gradient accumulation over"
            " the profile's micro-batches.",
        ),
    )

    def check_method(self, method: Method, config: Any) -> None:
        """Within the rules: an encoder config (checked again on the real vocabulary at run
        time), a masking rate in bounds and a known precision."""
        from tasks.cramming.model import EncoderConfig

        try:
            proposed = method.module.model_config(
                vocab_size=config.vocab_size, max_seq_len=config.seq_len, budget_s=config.budget_s
            )
        except Exception as exc:
            raise ValueError(f"model_config raised {type(exc).__name__}: {exc}") from exc
        if not isinstance(proposed, EncoderConfig):
            raise ValueError(
                "model_config must return tasks.cramming.model.EncoderConfig (an encoder-only"
                f" transformer trained from scratch), got {type(proposed).__name__}"
            )
        hp = method.hyperparameters
        rate = hp.get("mask_rate")
        low, high = MASK_RATE_BOUNDS
        if not isinstance(rate, int | float) or not low <= rate <= high:
            raise ValueError(f"HYPERPARAMETERS['mask_rate'] must be between {low} and {high}")
        if hp.get("precision", "fp32") not in ("fp32", "bf16", "auto"):
            raise ValueError("HYPERPARAMETERS['precision'] must be 'fp32', 'bf16' or 'auto'")

    def check_inputs(self, config: Any, data_dir: Path | None) -> None:
        """With a mirror, every file the profile reads must be there (without one, the hub is
        asked at run time)."""
        if data_dir is None:
            return
        from tasks.cramming.corpus import HUB_CORPORA

        needed = []
        if config.corpus in HUB_CORPORA:
            needed += [data_dir / config.corpus / f"{split}.txt" for split in ("train", "valid")]
        if config.downstream == "glue":
            from tasks.cramming.downstream import glue_task

            for name in config.glue_tasks:
                task = glue_task(name)
                folder = data_dir / "glue" / task.directory
                needed += [folder / "train.tsv", *(folder / file for _, file, _ in task.entries)]
        missing = [str(path) for path in needed if not path.is_file()]
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise ValueError(f"the data mirror lacks {missing[0]}{more}")

    def quality_gate(self, scalars: Mapping[str, float], config: Any) -> GateResult:
        loss = scalars.get("final_mlm_loss")
        uniform = math.log(config.vocab_size)
        if loss is None:
            return GateResult(False, "no final held-out loss")
        if loss >= uniform:
            return GateResult(
                False, f"held-out loss {loss:.3f} does not beat a uniform guess ({uniform:.3f})"
            )
        return GateResult(True)

    def run(self, ctx: RunContext, method: Method) -> None:
        from tasks.cramming.workload import run_cramming

        run_cramming(ctx, method)
