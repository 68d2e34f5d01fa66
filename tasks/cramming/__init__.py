"""Task `cramming`: pretrain a BERT-style masked LM from scratch under a wall-clock budget.

After Geiping & Goldstein, "Cramming: Training a Language Model on a Single GPU in One Day", read
side by side with their repository (github.com/JonasGeiping/cramming). The harness owns the data
(corpus, WordPiece tokenizer, sequences of 128 tokens), the model code, the training loop, the
clock and the evaluation; a method chooses the architecture through an `EncoderConfig`, the
optimizer, the learning-rate and batch-size schedules, the masking rate and, optionally, the data
order (`data_order(sequences, epoch, generator, run)`: a curriculum); `budgetbench tasks
cramming` prints the interface (`interface.py`).

Reference methods: `crammed-bert` is cramming's final recipe, `arch=crammed-bert` with
`train=bert-o4`, at full size at every budget; `bert-original` is cramming's baseline,
`arch=bert-original` with `train=bert-original` (BERT-base, Adam with L2 decay, batch 512, BERT's
1 M-step schedule with 1 % warm-up). `crammed-bert-tiny` and `bert-original-tiny` are the same
recipes scaled down for the offline smoke profile (their files say which numbers change); their
numbers are not cramming's. Method interface change (issue 15): `learning_rate(progress, step, run)`
receives the optimizer steps taken so far, for step-based schedules such as BERT's; the size of a
method's model no longer depends on the budget.

Data options (profile settings, as in cramming's data pipeline): `filter_max_unknown` drops
training sequences whose share of `[UNK]` tokens exceeds it; `sort_by_token_frequency` orders the
training sequences from the most to the least common mean token frequency and turns off the
shuffle (a method's `data_order` still takes precedence).

The training loop (cramming's rules): data preparation, tokenizer training and building the
model are untimed (cramming's `pretrain.py` starts its clocks once the model is built); the
method's optimizer set-up, compilation and every training step are timed. Micro-batches are read
and masked on a background thread on a GPU (on a CPU in the loop itself, where a second thread
only takes cores from training); each training sequence has exactly round(rate x 128)
positions corrupted (80 % [MASK], 10 % a random token, 10 % kept), so shapes are static and on a
GPU `torch.compile(fullgraph=True)` compiles one graph. The micro-batch is an implementation
setting, as cramming's `impl.microbatch_size`: the profile's `micro_batch`, on a CPU capped at
1.5e11 training FLOPs (two sequences of the full-size reference models; the scaled-down ones keep
the profile's), noted in the run as `micro_batch`. A step's batch is the method's `batch_size`,
rounded up to whole micro-batches; the first step takes `batch_size` and `learning_rate` at
progress 0, as cramming's first step is one micro-batch at the schedules' start. The clock is
checked before every micro-batch and the run stops at most one micro-batch after the budget (an
unfinished accumulation is dropped; its tokens count in tokens/s as work done), recorded as
`budget_overshoot_s`. The host waits for the device only at evaluation points and at the end.

Held-out loss: the mean MLM cross-entropy (nats per masked token) on the validation split's
sequences, masked with BERT's Bernoulli rule at 15 % with a fixed seed, identical for every
method; measured at `eval_points` evenly spaced moments of the budget (the curve) and at the end.
It is the smoke profile's headline: the shuffled-sentence probe that stood there sat at chance
for every method, and a minute of pretraining teaches nothing a fine-tuning shows.

Throughput and utilisation: tokens/s counts every token of every training micro-batch over the
timed seconds; FLOPs per token are 6·N + 12·L·H·S (N non-embedding parameters; L layers, H hidden
size, S sequence length); MFU divides tokens/s × FLOPs per token by the device's peak: a table of
dense bf16 tensor-core peaks for known GPUs, otherwise the best of five timings of a
square matmul (1024 on a CPU, 2048 on a GPU) in the training precision, measured on the spot
after training (untimed).

Downstream: GLUE fine-tuning with cramming's `GLUE_sane` protocol (see downstream.py), 8 tasks
without WNLI, scored both ways under separate names: the leaderboard's (`glue_<task>`, the mean of
a task's metrics, and `glue_average`) and cramming's (`glue_mrpc_f1`, `glue_qqp_f1`,
`glue_stsb_pearson`, and `glue_cramming_average`, cramming's `GLUE_amean`). `finetune_repeats=5`
fine-tunes each task 5 times and reports the medians (each fine-tuning's value is kept as a
sample, so the spread is stored). A GLUE evaluation with example caps or fewer than all tasks is
recorded as `glue_capped_*`, never as `glue_*` (the run's notes list the caps).

Checkpoints: every run saves its model and tokenizer as the run artifact `encoder`;
`checkpoint=PATH` evaluates such a file instead of pretraining (held-out loss with its own
tokenizer, then the same GLUE path), and so does a directory holding cramming's published
`JonasGeiping/crammed-bert` checkpoint, or `checkpoint=hf:JonasGeiping/crammed-bert` from the hub
(see checkpoints.py; the weight mapping is tested on a checkpoint in cramming's layout made here,
not yet on the published weights).

Quality gate: the final held-out loss must beat a uniform guess (ln of the vocabulary size) and
end at least 0.25 nats below the same network's untrained held-out loss, measured at the start of
the same run before the clock starts (`initial_mlm_loss`, the curve's first point at 0 s); a
checkpoint evaluation measures the untrained baseline on its architecture with the run's seed.

Remaining deviations from cramming's repository (all known to us):
- Corpus: `standard` and `full` stream cramming's `pile-readymade` with its own tokenizer, as
  its final recipe does, holding out its first `eval_sequences` rows for the held-out loss
  (cramming holds out none). `smoke` trains on the Python docstrings (offline) and
  `standard-wikitext103` on WikiText-103, each with a WordPiece trained on it: their numbers do
  not compare with the paper's. Only `full` (cramming's data, 24 hours, full GLUE) is shown
  beside the paper's GLUE averages.
- Masking never picks special tokens while others are available (cramming's may).
- The held-out MLM loss is budgetbench's measurement; cramming reports none.
- Learned positions are instantiated for 128 tokens (cramming's bert-original: 512).
- Fine-tuning reads the dev sets once after the last epoch, as cramming does, but pads each
  batch to its longest sequence (cramming pads to 128); GLUE's test sets are never used.
- The batch ramp rounds up to whole micro-batches of the run's micro-batch (cramming: its own
  `impl.microbatch_size`, 128 by default), so the micro-batch sets the ramp's granularity as in
  cramming; a CPU caps it (see above), where cramming leaves it to the user.
- The method's optimizer set-up is timed (cramming builds its optimizer before its budget clock
  starts; its ramp and schedule clock does start before it, as here).
- `bert-original` counts its schedule in optimizer steps, BERT's published 10,000 warm-up and
  1,000,000 total. Cramming's `train=bert-original` counts micro-batch steps (80,000 and
  8,000,000, "recovered with 512/64=8" at a micro-batch of 64); at its default micro-batch of
  128 the same config warms up over 20,000 optimizer steps and decays over 2,000,000.
- The learning-rate factor is set once per optimizer step from the budget spent when the step
  starts (cramming's scheduler ticks every micro-batch, to the same time-based value).
- Precision and compilation on a GPU: bf16 autocast without gradient scaling, in pretraining
  and fine-tuning (cramming's `impl=torch-default` uses fp16 autocast with a gradient scaler and
  names bf16 as an option), and `torch.compile(fullgraph=True)` with inductor's default settings
  (cramming also turns on max-autotune GEMMs and CUDA graphs). Both change speed and rounding,
  not the recipe; on a CPU everything runs in fp32, uncompiled.
- MFU and FLOPs per token are budgetbench's (cramming reports neither); the vocabulary
  projection is outside N when it is tied to the embedding, as for both reference recipes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.base import Consistency, GateResult, Method, Metric, RunContext, Task

GLUE_TASKS = ("cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte")
# MNLI is fine-tuned once and scored on two dev sets, so it gives two entries.
GLUE_ENTRIES = ("cola", "sst2", "mrpc", "stsb", "qqp", "mnli_m", "mnli_mm", "qnli", "rte")
DOWNSTREAMS = ("glue", "none")
# Cramming's target metrics where they differ from the leaderboard's task score (the mean of the
# task's metrics): F1 alone for MRPC and QQP, Pearson alone for STS-B.
CRAMMING_ONLY = {"mrpc": "f1", "qqp": "f1", "stsb": "pearson"}
GATE_MARGIN_NATS = 0.25
"""How far below the untrained model's held-out loss a run must end (a quarter nat: 22 % lower
perplexity). An untrained pre-norm model already beats a uniform guess (the full-size
crammed-bert scores 7.857 against ln 4096 = 8.318 on the smoke data), so the uniform guess alone
passes runs that learned nothing; the scaled-down recipes end about 0.75 nats below their
untrained loss after a minute on a quiet 2-core CPU. A unigram model (6.24 on the smoke data) is
out of a minute's reach."""


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
    glue_tasks: list[str] = field(default_factory=list)
    glue_max_train_examples: int = 0
    glue_max_dev_examples: int = 0
    finetune_epochs: int = 5
    finetune_learning_rate: float = 4e-5
    finetune_repeats: int = 1
    checkpoint: str = ""
    """A saved encoder to evaluate instead of pretraining (see tasks/cramming/checkpoints.py)."""
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
        if not 1 <= self.finetune_repeats <= 20:
            raise TypeError("finetune_repeats must be 1 to 20")
        if not 1 <= self.finetune_epochs <= 5:
            raise TypeError("finetune_epochs must be 1 to 5 (cramming's rule: at most 5)")


def _glue_metrics(prefix: str, qualifier: str) -> tuple[Metric, ...]:
    """GLUE scores both ways: the leaderboard's task scores and average, cramming's target
    metrics (where they differ) and average."""
    return (
        *(
            Metric(f"{prefix}_{t}", "score", True, f"GLUE {t}{qualifier}, leaderboard score x100")
            for t in GLUE_ENTRIES
        ),
        Metric(f"{prefix}_average", "score", True, f"GLUE{qualifier}, leaderboard average"),
        *(
            Metric(f"{prefix}_{t}_{m}", "score", True, f"GLUE {t}{qualifier}, {m} x100 (cramming)")
            for t, m in CRAMMING_ONLY.items()
        ),
        Metric(
            f"{prefix}_cramming_average", "score", True, f"GLUE{qualifier}, cramming's GLUE_amean"
        ),
    )


class CrammingTask(Task):
    name = "cramming"
    description = "BERT-style MLM pretraining from scratch under a wall-clock budget, then GLUE."
    config_type = CrammingConfig
    reference_methods = ("crammed-bert", "bert-original", "crammed-bert-tiny", "bert-original-tiny")
    consistency = Consistency(
        final_is_last_point={"final_mlm_loss": "heldout_mlm_loss"},
        timed_seconds_metric="budget_used_s",
    )
    headline_metrics = (
        "final_mlm_loss",
        "glue_average",
        "glue_cramming_average",
        "glue_capped_average",
        "glue_capped_cramming_average",
        "tokens_per_s",
        "mfu",
        "steps",
        "peak_memory_mib",
    )
    metrics = (
        Metric("final_mlm_loss", "nats", False, "held-out MLM loss at the end of the budget"),
        Metric(
            "initial_mlm_loss",
            "nats",
            False,
            "held-out MLM loss of the untrained model (the quality gate's baseline)",
        ),
        Metric("heldout_mlm_loss", "nats", False, "held-out MLM loss during training", x_unit="s"),
        Metric("train_mlm_loss", "nats", False, "training loss of the last step", x_unit="s"),
        Metric("tokens_per_s", "tokens/s", True, "training tokens per timed second"),
        Metric("mfu", "%", True, "model FLOPs utilisation against the device's peak"),
        Metric("steps", "steps", True, "optimizer steps within the budget"),
        Metric(
            "micro_batch_steps",
            "steps",
            True,
            "micro-batches trained, a cut accumulation's included (cramming's `steps` count these)",
        ),
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
        *_glue_metrics("glue", ""),
        *_glue_metrics("glue_capped", ", capped or partial"),
    )

    def check_method(self, method: Method, config: Any) -> None:
        """Within the rules (beyond the interface's own checks, `interface.py`): an encoder
        config (checked again on the real vocabulary at run time)."""
        from tasks.common.model import EncoderConfig

        run = method.new_run(seed=0, device="cpu", budget_s=config.budget_s)
        try:
            proposed = method.module.model_config(
                vocab_size=config.vocab_size,
                max_seq_len=config.seq_len,
                budget_s=config.budget_s,
                run=run,
            )
        except Exception as exc:
            raise ValueError(f"model_config raised {type(exc).__name__}: {exc}") from exc
        if not isinstance(proposed, EncoderConfig):
            raise ValueError(
                "model_config must return tasks.common.model.EncoderConfig (an encoder-only"
                f" transformer trained from scratch), got {type(proposed).__name__}"
            )

    def check_inputs(self, config: Any, data_dir: Path | None) -> None:
        """A checkpoint to evaluate must load; with a mirror, every file the profile reads must
        be there (without one, the hub is asked at run time)."""
        if config.checkpoint:
            from tasks.cramming.checkpoints import load_checkpoint

            load_checkpoint(Path(config.checkpoint))
        if data_dir is None:
            return
        from tasks.common.corpus import check_mirror

        glue = []
        if config.downstream == "glue":
            from tasks.cramming.downstream import glue_task

            for name in config.glue_tasks:
                task = glue_task(name)
                folder = data_dir / "glue" / task.directory
                glue += [folder / "train.tsv", *(folder / file for _, file, _ in task.entries)]
        check_mirror(config.corpus, data_dir, also=glue)

    def quality_gate(self, scalars: Mapping[str, float], config: Any) -> GateResult:
        """The model learned: its held-out loss beats a uniform guess and improves on the same
        network untrained (measured in the same run, on the same masked sequences) by at least
        `GATE_MARGIN_NATS`."""
        loss, initial = scalars.get("final_mlm_loss"), scalars.get("initial_mlm_loss")
        uniform = math.log(config.vocab_size)
        if loss is None or initial is None:
            return GateResult(False, "no final or no initial held-out loss")
        if loss >= uniform:
            return GateResult(
                False, f"held-out loss {loss:.3f} does not beat a uniform guess ({uniform:.3f})"
            )
        if loss > initial - GATE_MARGIN_NATS:
            return GateResult(
                False,
                f"held-out loss {loss:.3f} is not {GATE_MARGIN_NATS} nats below the untrained"
                f" model's {initial:.3f}",
            )
        return GateResult(True)

    def run(self, ctx: RunContext, method: Method) -> None:
        from tasks.cramming.workload import run_cramming

        run_cramming(ctx, method)
