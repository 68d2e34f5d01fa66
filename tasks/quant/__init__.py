"""Task `quant`: how much a post-training quantization changes a causal language model.

After llama.cpp's `perplexity --kl-divergence` report, Dutta et al. "Accuracy is Not All You Need"
(KL and answer flips), "Understanding the Impact of Post-Training Quantization on Large Language
Models" (bitsandbytes formats, sampling sensitivity, speed and memory) and MLPerf Inference (a
quantized model keeps 99% of the reference quality).

One run compares one method's model against the reference, the same model in a fixed, named
precision (`reference`: float32 by default on every device, bfloat16 on request), on the same
tokens:
- token level (`tasks.quant.compare`, data in `tasks.quant.data`): llama.cpp's protocol by default
  at standard and full (`protocol = "llama.cpp"`: raw WikiText-2 test text, windows of n_ctx with
  BOS at position 0 where the tokenizer adds one, second half of each window scored) and
  llama.cpp's whole KL summary: PPL of both models, Cor(ln PPL_Q, ln PPL_base),
  ln(PPL_Q/PPL_base), PPL ratio and difference, the KLD mean and percentile ladder, the Δp mean,
  ladder and RMS, the same-top share, each with llama.cpp's standard errors; `show` prints them
  laid out as llama.cpp does;
- downstream (`tasks.quant.downstream`): lm-evaluation-harness accuracy and the flip rate against
  the reference on lm-eval's own `hellaswag`, `arc_easy`, `piqa` and `winogrande` (standard, full;
  zero-shot, hub or `--data-dir` mirror); the smoke profile runs instead a *synthetic* 4-way
  continuation choice built from held-out text, an offline check of the plumbing and not a
  published benchmark (its metrics, `show` and the site say so);
- sampling sensitivity (`tasks.quant.sampling`): a temperature x top-k x max-new-tokens grid,
  each cell's departure from the reference with a bootstrap interval, against a noise floor (the
  reference against itself with other seeds);
- per-layer sensitivity (`tasks.quant.sensitivity`): one layer quantized at a time;
- speed and memory (`tasks.quant.speed`).
The reference's own results (sampling grid and floor; downstream answers, keyed by lm-eval's
hashes of the documents scored) are cached on disk, keyed by the model's files, the data and the
settings, so a sweep computes them once.

Deviations from llama.cpp that remain (everything else of the token-level protocol and summary
follows tools/perplexity/perplexity.cpp; see `tasks.quant.compare` and `tasks.quant.data`):
- Models and formats: PyTorch through transformers, not GGUF and ggml kernels; the formats are
  the libraries' (bitsandbytes, torchao, HQQ, GPTQModel), not llama.cpp's k-quants or i-quants, so
  a row here and a row of a llama.cpp table share a protocol, not a format.
- The reference: float32 by default (bfloat16 on request); llama.cpp's tables take the
  `--kl-divergence-base` logits of whatever model was run first, usually the F16 or BF16 GGUF.
- Reference log-probabilities are exact (float64 here); llama.cpp stores them as 16-bit codes in
  its base-logits file and leaves vocabulary entries below -16 out of the KL sum.
- Tokenization is the Hugging Face tokenizer's, which can split the same text differently from
  llama.cpp's own tokenizer for the same vocabulary, so the scored tokens (and their count) may
  differ.
- `eval_windows` may cap the windows (llama.cpp's `--chunks`; 0, the standard and full setting,
  takes them all). The smoke profile keeps `protocol = "articles"` (validation articles of its own
  corpus, no BOS), which no published table uses.
- Downstream accuracy is lm-eval's (its prompts, `acc` and `acc_norm`), not llama.cpp's own
  `--hellaswag`/`--winogrande`/`--multiple-choice` scorers, whose data files, prompts and scoring
  differ; standard scores the first `choice_items` documents of each task, full all of them. The
  smoke profile's synthetic continuation choice is no benchmark at all.
- Speed is PyTorch eager at batch 1 (prefill of `speed_prompt_len`, then `speed_decode_tokens`
  decode steps), not `llama-bench`'s pp512/tg128 with ggml kernels.

Primary quality score: exp(-mean NLL) of the held-out scored tokens, i.e. 1/perplexity.
`quality_retained` = PPL_ref / PPL_q in percent; the quality gate asks for at least 99
(`quality_threshold`), MLPerf's rule.

Nothing here is timed against a budget; wall-clock timings are the speed measurements.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.base import GateResult, Method, Metric, RunContext, Task
from tasks.quant.downstream import DOWNSTREAM_TASKS, LM_EVAL_TASKS, SYNTHETIC, SYNTHETIC_LABEL

# torchao registers Enum subclasses as pytree constants, which torch >= 2.14 logs as deprecated on
# import; the message is for torchao's authors, not for someone reading a benchmark's output.
logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)

REFERENCE_METHODS = (
    "fp32",
    "bf16",
    "bnb-int8",
    "bnb-nf4",
    "bnb-fp4",
    "bnb-fp4-dq",
    "torchao-int8-weight-only",
    "torchao-int8-dynamic",
    "torchao-fp8-weight-only",
    "torchao-int4-weight-only",
    "hqq-4bit",
    "gptq-4bit",
)


@dataclass(frozen=True)
class QuantConfig:
    """One profile's settings (see suite/<version>/quant.toml)."""

    model: str
    """A local directory, a name under the data mirror or in the Hugging Face cache, or
    `smoke-lm` (the small model this task trains on the smoke corpus)."""
    corpus: str
    context_len: int
    eval_windows: int
    calibration_windows: int
    batch_size: int
    choice_items: int
    choice_count: int
    choice_context_words: int
    choice_continuation_words: int
    prompts: int
    prompt_len: int
    temperatures: list[float]
    top_ks: list[int]
    max_new_tokens: list[int]
    generation_seeds: int
    sensitivity_windows: int
    sensitivity_max_layers: int
    speed_prompt_len: int
    speed_decode_tokens: int
    speed_repeats: int
    quality_threshold: float = 0.99
    protocol: str = "llama.cpp"
    """How held-out text is windowed: "llama.cpp" (raw test text, BOS) or "articles"."""
    reference: str = "fp32"
    """The reference's precision, the same on every device: "fp32" or "bf16"."""
    floor_bootstrap: int = 1000
    """Bootstrap resamples for the sampling grid's intervals."""
    downstream: list[str] = field(default_factory=lambda: list(LM_EVAL_TASKS))
    """lm-eval tasks scored (see tasks.quant.downstream); "synthetic-choice" is smoke's offline
    stand-in. `choice_items` documents of each (0: all of a real task's)."""
    smoke_vocab_size: int = 4096
    smoke_hidden_size: int = 128
    smoke_layers: int = 2
    smoke_heads: int = 4
    smoke_intermediate_size: int = 384
    smoke_seq_len: int = 128
    smoke_batch: int = 16
    smoke_steps: int = 400
    smoke_learning_rate: float = 3e-3

    def __post_init__(self) -> None:
        if self.context_len < 8 or self.context_len % 2:
            raise TypeError("context_len must be an even number of at least 8 tokens")
        positive = ("calibration_windows", "batch_size", "prompts", "prompt_len",
                    "generation_seeds", "sensitivity_windows", "speed_repeats",
                    "floor_bootstrap")  # fmt: skip
        for name in positive:
            if getattr(self, name) < 1:
                raise TypeError(f"{name} must be at least 1")
        if self.eval_windows < 0:
            raise TypeError("eval_windows must be at least 0 (0: every window)")
        if self.eval_windows and max(self.sensitivity_windows, self.prompts) > self.eval_windows:
            raise TypeError("sensitivity_windows and prompts must not exceed eval_windows")
        if self.protocol not in ("llama.cpp", "articles"):
            raise TypeError('protocol must be "llama.cpp" or "articles"')
        if self.protocol == "llama.cpp" and self.corpus == "python-docstrings":
            raise TypeError('protocol "llama.cpp" needs a WikiText corpus (it has a test split)')
        if self.reference not in ("fp32", "bf16"):
            raise TypeError('reference must be "fp32" or "bf16"')
        if self.prompt_len >= self.context_len:
            raise TypeError("prompt_len must be shorter than context_len")
        if self.choice_count < 2 or self.choice_items < 0:
            raise TypeError("choice_count must be at least 2 and choice_items at least 0")
        unknown = sorted(set(self.downstream) - set(DOWNSTREAM_TASKS))
        if not self.downstream or unknown or len(set(self.downstream)) < len(self.downstream):
            raise TypeError(f"downstream must list distinct tasks out of {list(DOWNSTREAM_TASKS)}")
        if SYNTHETIC in self.downstream and self.choice_items < self.choice_count:
            raise TypeError(f"{SYNTHETIC} needs choice_items of at least choice_count")
        if not self.temperatures or any(not 0 <= t <= 2 for t in self.temperatures):
            raise TypeError("temperatures must be a non-empty list between 0 and 2")
        if not self.top_ks or any(k < 0 for k in self.top_ks):
            raise TypeError("top_ks must be a non-empty list of k >= 0 (0: no top-k)")
        if not self.max_new_tokens or any(n < 4 for n in self.max_new_tokens):
            raise TypeError("max_new_tokens must be a non-empty list of lengths >= 4")
        if self.speed_decode_tokens < 2:
            raise TypeError("speed_decode_tokens must be at least 2")
        if not 0 < self.quality_threshold <= 1:
            raise TypeError("quality_threshold must be in (0, 1]")


def _m(name: str, unit: str, higher: bool, text: str, x_unit: str | None = None) -> Metric:
    return Metric(name, unit, higher, text, x_unit)


def _percent_label(name: str) -> str:
    digits = name[1:]
    return f"{int(digits) / 10 ** max(len(digits) - 2, 0):g}th percentile"


def token_metrics() -> tuple[Metric, ...]:
    """llama.cpp's `--kl-divergence` summary, one metric per printed number."""
    from tasks.quant.compare import DELTA_P_LADDER, KL_LADDER

    se = "standard error of "
    metrics = [
        _m("ppl", "ppl", False, "PPL(Q): perplexity of the method's model on the scored tokens"),
        _m("ppl_se", "ppl", False, se + "PPL(Q)"),
        _m("ppl_reference", "ppl", False, "PPL(base): the reference's perplexity, same tokens"),
        _m("ppl_reference_se", "ppl", False, se + "PPL(base)"),
        _m("ln_ppl_correlation", "%", True, "Cor(ln PPL(Q), ln PPL(base)) as llama.cpp"),
        _m("ln_ppl_ratio", "nats", False, "ln(PPL(Q)/PPL(base)) = mean NLL difference"),
        _m("ln_ppl_ratio_se", "nats", False, se + "ln(PPL(Q)/PPL(base))"),
        _m("ppl_ratio", "ratio", False, "PPL(Q)/PPL(base)"),
        _m("ppl_ratio_se", "ratio", False, se + "PPL(Q)/PPL(base)"),
        _m("ppl_diff", "ppl", False, "PPL(Q) - PPL(base)"),
        _m("ppl_diff_se", "ppl", False, se + "PPL(Q) - PPL(base)"),
        _m("kl_mean", "nats", False, "mean KL(reference || quantized) per scored token"),
        _m("kl_mean_se", "nats", False, se + "the mean KL"),
        _m("kl_max", "nats", False, "largest per-token KL"),
        *(_m(f"kl_{name}", "nats", False,
             f"{'median' if name == 'median' else _percent_label(name)} of per-token KL")
          for name, _ in KL_LADDER),
        _m("kl_min", "nats", False, "smallest per-token KL"),
        _m("delta_p_mean", "%", True, "mean Δp: change of the true token's probability (points)"),
        _m("delta_p_mean_se", "%", False, se + "the mean Δp"),
        _m("delta_p_max", "%", True, "largest Δp"),
        *(_m(f"delta_p_{name}", "%", True,
             f"{'median' if name == 'median' else _percent_label(name)} of Δp")
          for name, _ in DELTA_P_LADDER),
        _m("delta_p_min", "%", True, "smallest (most negative) Δp"),
        _m("delta_p_rms", "%", False, "RMS Δp (points)"),
        _m("delta_p_rms_se", "%", False, se + "RMS Δp"),
        _m("same_top1", "%", True, "same top p: tokens where both models' top-1 tokens agree"),
        _m("same_top1_se", "%", False, se + "the same-top share"),
        _m("scored_tokens", "tokens", True, "held-out tokens scored (second halves of windows)"),
    ]  # fmt: skip
    return tuple(metrics)


def downstream_metrics() -> tuple[Metric, ...]:
    """Each downstream task's lm-eval accuracy and flips (see tasks.quant.downstream)."""
    from tasks.quant.downstream import metric_key

    metrics = []
    for task in DOWNSTREAM_TASKS:
        what = SYNTHETIC_LABEL if task == SYNTHETIC else f"lm-eval {task}, zero-shot"
        key = f"downstream_{metric_key(task)}"
        metrics += [
            _m(f"{key}_accuracy", "%", True, f"accuracy (acc), {what}"),
            _m(f"{key}_accuracy_reference", "%", True, f"the reference's accuracy, {what}"),
            _m(f"{key}_flip_rate", "%", False, f"items whose correctness flipped, {what}"),
        ]
        if task != SYNTHETIC:
            metrics.append(_m(f"{key}_accuracy_norm", "%", True, f"acc_norm, {what}"))
    return tuple(metrics)


def sampling_metrics() -> tuple[Metric, ...]:
    """The sampling grid against its noise floor (see tasks.quant.sampling)."""
    return (
        _m("sampling_departure_mean", "nats", False, "mean |NLL_q - NLL_ref| over the grid"),
        _m("sampling_departure_max", "nats", False, "largest |NLL_q - NLL_ref| of a grid cell"),
        _m("sampling_floor_max", "nats", False,
           "noise floor: largest |NLL_ref' - NLL_ref| of the reference with other seeds"),
        _m("sampling_beyond_floor", "nats", False,
           "largest departure beyond the floor: max|NLL_q - NLL_ref| - floor"),
        _m("sampling_beyond_floor_low", "nats", False, "its 95% bootstrap interval, low end"),
        _m("sampling_beyond_floor_high", "nats", False, "its 95% bootstrap interval, high end"),
        _m("sampling_significant_cells", "cells", False,
           "grid cells whose departure's 95% interval lies beyond the floor"),
        _m("sampling_worst_temperature", "T", False, "temperature of the most departing cell"),
        _m("sampling_band_low", "T", False, "lowest temperature of a significant cell"),
        _m("sampling_band_high", "T", False, "highest temperature of a significant cell"),
    )  # fmt: skip


class QuantTask(Task):
    name = "quant"
    description = (
        "Post-training quantization of a causal LM against its reference: KL, perplexity,"
        " flips, sampling and per-layer sensitivity, speed and memory."
    )
    config_type = QuantConfig
    reference_methods = REFERENCE_METHODS
    headline_metrics = (
        "quality_retained",
        "kl_mean",
        "ln_ppl_ratio",
        "same_top1",
        "choice_flip_rate",
        "sampling_beyond_floor",
        "decode_tokens_per_s",
        "weight_mib",
    )
    metrics = (
        _m("quality_retained", "%", True, "PPL_ref / PPL_q (primary score exp(-mean NLL) kept)"),
        *token_metrics(),
        _m(
            "choice_accuracy",
            "%",
            True,
            "lm-eval accuracy over the items of all the profile's downstream tasks (smoke: the"
            " synthetic continuation choice only, an offline check, not a benchmark)",
        ),
        _m("choice_accuracy_reference", "%", True, "the reference's accuracy on the same items"),
        _m(
            "choice_flip_rate",
            "%",
            False,
            "items whose correctness differs from the reference, over all downstream tasks",
        ),
        *downstream_metrics(),
        *sampling_metrics(),
        _m("sampling_nll", "nats", False, "generations' NLL under the reference", "T"),
        _m("sampling_reference_nll", "nats", False, "the reference's own generations", "T"),
        _m("sampling_nll_departure", "nats", False, "NLL_q - NLL_ref by temperature", "T"),
        _m(
            "sampling_floor_departure",
            "nats",
            False,
            "NLL_ref' - NLL_ref: the reference with other seeds, by temperature",
            "T",
        ),
        _m("sampling_distinct_2", "ratio", True, "distinct token bigrams per bigram", "T"),
        _m("sampling_repetition", "ratio", False, "seq-rep-4 of the generations", "T"),
        _m("layer_kl_max", "nats", False, "KL of the most sensitive single layer"),
        _m("layer_kl_mean", "nats", False, "mean KL over the single-layer quantizations"),
        _m("layer_loss_increase_max", "nats", False, "largest single-layer NLL increase"),
        _m("layers_probed", "layers", True, "linear layers in the per-layer sweep"),
        _m("prefill_tokens_per_s", "tokens/s", True, "prompt tokens per second, batch 1"),
        _m("decode_tokens_per_s", "tokens/s", True, "generated tokens per second, batch 1"),
        _m("time_to_first_token_s", "s", False, "prefill plus one generated token, median"),
        _m("weight_mib", "MiB", False, "the model's state dict as stored"),
        _m("peak_memory_mib", "MiB", False, "weights plus the inference benchmark's peak extra"),
        _m("bits_per_weight", "bits", False, "the method's declared bits per linear weight"),
        _m(
            "measured_bits_per_weight",
            "bits",
            False,
            "bits per quantized linear weight as the format packs them (codes, scales, zeros)",
        ),
        _m("quantize_s", "s", False, "seconds the method's quantize() took"),
        _m("parameters", "parameters", False, "parameters of the full-precision model"),
    )

    def check_method(self, method: Method, config: Any) -> None:
        """Within the rules (beyond the interface's own checks, `interface.py`): a number of
        bits per weight that a format can have."""
        bits = method.constants["BITS_PER_WEIGHT"]
        if not 0 < bits <= 32:
            raise ValueError("BITS_PER_WEIGHT must be a number of bits between 0 and 32")

    def check_inputs(self, config: Any, data_dir: Path | None) -> None:
        from tasks.quant.models import SMOKE_MODEL, require_model, require_quantizable

        if config.model != SMOKE_MODEL:
            try:
                require_quantizable(require_model(config.model, data_dir))
            except Exception as exc:
                raise ValueError(str(exc)) from exc
        if data_dir is not None and config.corpus != "python-docstrings":
            splits = (
                ("train", "valid", "test") if config.protocol == "llama.cpp" else ("train", "valid")
            )
            needed = [data_dir / config.corpus / f"{split}.txt" for split in splits]
            missing = [str(path) for path in needed if not path.is_file()]
            if missing:
                raise ValueError(f"the data mirror lacks {missing[0]}")
        from tasks.quant.downstream import check_reachable

        for task in config.downstream:
            if task != SYNTHETIC:
                try:
                    check_reachable(task, data_dir)
                except Exception as exc:
                    raise ValueError(str(exc)) from exc

    def quality_gate(self, scalars: Mapping[str, float], config: Any) -> GateResult:
        retained = scalars.get("quality_retained")
        if retained is None:
            return GateResult(False, "no quality_retained measurement")
        if retained < 100.0 * config.quality_threshold:
            return GateResult(
                False,
                f"keeps {retained:.2f}% of the reference's exp(-NLL),"
                f" below {100 * config.quality_threshold:g}%",
            )
        return GateResult(True)

    def report_lines(self, scalars: Mapping[str, float]) -> list[str]:
        from tasks.quant.compare import llama_cpp_report
        from tasks.quant.downstream import downstream_report

        return llama_cpp_report(dict(scalars)) + downstream_report(dict(scalars))

    def run(self, ctx: RunContext, method: Method) -> None:
        from tasks.quant.workload import run_quant

        run_quant(ctx, method)
