"""Token-level comparison of a quantized model with its reference, as llama.cpp's
`perplexity --kl-divergence` reports it.

Each held-out window of `n` tokens is run through both models; only the second half of the window
is scored (the logits at positions n/2-1 .. n-2, predicting tokens n/2 .. n-1), so every scored
token has at least n/2 tokens of context. Per scored token the comparison keeps: the negative
log-likelihood of the true token under each model, KL(reference || quantized) over the whole
vocabulary, the change in the true token's probability, and whether the top-1 tokens agree.

Uncertainties are standard errors over tokens, treating tokens as independent (llama.cpp does the
same; neighbouring tokens are correlated, so they are somewhat optimistic).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch


def scored_slice(context_len: int) -> slice:
    """Positions of the logits that are scored: the second half of the window (llama.cpp)."""
    if context_len < 4:
        raise ValueError(f"context_len must be at least 4, got {context_len}")
    first = context_len // 2
    return slice(first - 1, context_len - 1)


@dataclass
class TokenStats:
    """Per-scored-token quantities for a batch of windows, flattened (all float64 on the CPU)."""

    nll_reference: torch.Tensor
    nll_quantized: torch.Tensor
    kl: torch.Tensor
    delta_p: torch.Tensor
    same_top1: torch.Tensor


def compare_logits(
    reference_logits: torch.Tensor, quantized_logits: torch.Tensor, tokens: torch.Tensor
) -> TokenStats:
    """Compare two models' logits (windows, n, vocab) on the same `tokens` (windows, n)."""
    if reference_logits.shape != quantized_logits.shape:
        raise ValueError(
            f"the quantized model's logits have shape {tuple(quantized_logits.shape)}, the"
            f" reference's {tuple(reference_logits.shape)}"
        )
    scored = scored_slice(tokens.shape[1])
    targets = tokens[:, scored.start + 1 : scored.stop + 1].reshape(-1)
    vocab = reference_logits.shape[-1]
    log_p = torch.log_softmax(reference_logits[:, scored].reshape(-1, vocab).double(), dim=-1)
    log_q = torch.log_softmax(quantized_logits[:, scored].reshape(-1, vocab).double(), dim=-1)
    if not torch.isfinite(log_q).all():
        raise FloatingPointError("the quantized model produced non-finite logits")
    true_p = log_p.gather(1, targets[:, None].long()).squeeze(1)
    true_q = log_q.gather(1, targets[:, None].long()).squeeze(1)
    kl = (log_p.exp() * (log_p - log_q)).sum(dim=-1).clamp_min(0.0)
    return TokenStats(
        nll_reference=(-true_p).cpu(),
        nll_quantized=(-true_q).cpu(),
        kl=kl.cpu(),
        delta_p=(true_q.exp() - true_p.exp()).cpu(),
        same_top1=(log_p.argmax(-1) == log_q.argmax(-1)).double().cpu(),
    )


@dataclass
class ComparisonSummary:
    """The numbers a run stores; names follow the task's metrics."""

    tokens: int
    ppl: float
    ppl_se: float
    ppl_reference: float
    ln_ppl_ratio: float
    ln_ppl_ratio_se: float
    kl_mean: float
    kl_mean_se: float
    kl_median: float
    kl_p90: float
    kl_p99: float
    kl_p999: float
    kl_max: float
    delta_p_mean: float
    delta_p_rms: float
    same_top1: float
    extra: dict[str, float] = field(default_factory=dict)


def _se(values: torch.Tensor) -> float:
    if values.numel() < 2:
        return 0.0
    return float(values.std(unbiased=True) / math.sqrt(values.numel()))


def summarize(stats: list[TokenStats]) -> ComparisonSummary:
    """Aggregate the per-token quantities of every batch into the stored numbers."""
    nll_ref = torch.cat([s.nll_reference for s in stats])
    nll_q = torch.cat([s.nll_quantized for s in stats])
    kl = torch.cat([s.kl for s in stats])
    delta_p = torch.cat([s.delta_p for s in stats])
    same = torch.cat([s.same_top1 for s in stats])
    ppl = math.exp(float(nll_q.mean()))
    quantiles = torch.quantile(kl, torch.tensor([0.5, 0.9, 0.99, 0.999], dtype=kl.dtype))
    return ComparisonSummary(
        tokens=int(kl.numel()),
        ppl=ppl,
        ppl_se=ppl * _se(nll_q),
        ppl_reference=math.exp(float(nll_ref.mean())),
        ln_ppl_ratio=float((nll_q - nll_ref).mean()),
        ln_ppl_ratio_se=_se(nll_q - nll_ref),
        kl_mean=float(kl.mean()),
        kl_mean_se=_se(kl),
        kl_median=float(quantiles[0]),
        kl_p90=float(quantiles[1]),
        kl_p99=float(quantiles[2]),
        kl_p999=float(quantiles[3]),
        kl_max=float(kl.max()),
        delta_p_mean=float(delta_p.mean()),
        delta_p_rms=float(delta_p.pow(2).mean().sqrt()),
        same_top1=100.0 * float(same.mean()),
    )
