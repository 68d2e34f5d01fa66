"""Token-level comparison of a quantized model with its reference, as llama.cpp's
`perplexity --kl-divergence` reports it (tools/perplexity/perplexity.cpp in ggml-org/llama.cpp).

Each held-out window of `n` tokens is run through both models; only the second half is scored,
exactly as llama.cpp does: with `first = n // 2`, the logits at positions first .. n-2 predict
tokens first+1 .. n-1 (n/2 - 1 tokens a window, 255 at llama.cpp's default n = 512). Per scored
token the comparison keeps the negative log-likelihood of the true token under each model,
KL(reference || quantized) over the whole vocabulary, Δp (the quantized model's probability of the
true token minus the reference's) and whether the two models' most likely tokens agree.

`summarize` computes llama.cpp's summary with llama.cpp's formulas: each mean with its standard
error sqrt((E[x^2] - E[x]^2) / (N - 1)) (zero for N <= 10), the covariance of the two mean NLLs
(E[ab] - E[a]E[b]) / (N - 1) (zero for N < 10) and from it Cor(ln PPL_Q, ln PPL_base) and the
errors of ln(PPL_Q/PPL_base), PPL_Q/PPL_base and PPL_Q - PPL_base; percentiles interpolated
linearly at fraction * (N - 1) of the sorted values; RMS Δp with error 0.5 / RMS * SE(Δp^2); the
same-top share with error sqrt(p (1 - p) / (N - 1)). Like llama.cpp, tokens are treated as
independent (neighbouring tokens are correlated, so the errors are somewhat optimistic).

Where this differs from llama.cpp: the reference's log-probabilities are used exactly in float64
(llama.cpp stores them as 16-bit codes in its logits file and drops vocabulary entries whose
reference log-probability is below -16 from the KL sum); both models run here in one process.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

KL_LADDER = (("p999", 0.999), ("p99", 0.99), ("p95", 0.95), ("p90", 0.90), ("median", 0.5),
             ("p10", 0.10), ("p05", 0.05), ("p01", 0.01), ("p001", 0.001))  # fmt: skip
"""llama.cpp's KLD percentiles (its `Maximum`/`Minimum` lines are kl_max and kl_min)."""
DELTA_P_LADDER = (("p999", 0.999), ("p99", 0.99), ("p95", 0.95), ("p90", 0.90), ("p75", 0.75),
                  ("median", 0.5), ("p25", 0.25), ("p10", 0.10), ("p05", 0.05), ("p01", 0.01),
                  ("p001", 0.001))  # fmt: skip
"""llama.cpp's Δp percentiles."""


def scored_slice(context_len: int) -> slice:
    """Positions of the logits that are scored: first .. n-2 with first = n // 2 (llama.cpp)."""
    if context_len < 4:
        raise ValueError(f"context_len must be at least 4, got {context_len}")
    return slice(context_len // 2, context_len - 1)


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


def mean_and_se(values: torch.Tensor) -> tuple[float, float]:
    """llama.cpp's `mean_and_uncertainty`: the mean and sqrt(population variance / (N - 1)),
    the error taken as zero for N <= 10."""
    count = values.numel()
    mean = float(values.mean())
    variance = float(values.pow(2).mean()) - mean * mean
    return mean, math.sqrt(variance / (count - 1)) if variance > 0 and count > 10 else 0.0


def _covariance_of_means(a: torch.Tensor, b: torch.Tensor) -> float:
    count = a.numel()
    if count < 10:
        return 0.0
    return (float((a * b).mean()) - float(a.mean()) * float(b.mean())) / (count - 1)


def _percentiles(values: torch.Tensor, ladder) -> dict[str, float]:
    fractions = torch.tensor([fraction for _, fraction in ladder], dtype=values.dtype)
    quantiles = torch.quantile(values, fractions)  # linear, at fraction * (N - 1): llama.cpp's
    return {name: float(q) for (name, _), q in zip(ladder, quantiles, strict=True)}


def summarize(stats: list[TokenStats]) -> dict[str, float]:
    """llama.cpp's summary of every batch's tokens, keyed by the task's metric names (Δp, the
    same-top share and the correlation in percent, as llama.cpp prints them)."""
    nll_q = torch.cat([s.nll_quantized for s in stats])
    nll_ref = torch.cat([s.nll_reference for s in stats])
    kl = torch.cat([s.kl for s in stats])
    delta_p = torch.cat([s.delta_p for s in stats])
    same = torch.cat([s.same_top1 for s in stats])
    count = kl.numel()
    log_ppl, log_ppl_se = mean_and_se(nll_q)
    log_ppl_ref, log_ppl_ref_se = mean_and_se(nll_ref)
    covariance = _covariance_of_means(nll_q, nll_ref)
    ppl, ppl_ref = math.exp(log_ppl), math.exp(log_ppl_ref)
    ratio_se = math.sqrt(max(log_ppl_se**2 + log_ppl_ref_se**2 - 2 * covariance, 0.0))
    diff_variance = (ppl * log_ppl_se) ** 2 + (ppl_ref * log_ppl_ref_se) ** 2
    diff_variance -= 2 * ppl * ppl_ref * covariance
    both_se = log_ppl_se * log_ppl_ref_se
    out = {
        "scored_tokens": float(count),
        "ppl": ppl,
        "ppl_se": ppl * log_ppl_se,
        "ppl_reference": ppl_ref,
        "ppl_reference_se": ppl_ref * log_ppl_ref_se,
        "ln_ppl_correlation": 100.0 * covariance / both_se if both_se > 0 else math.nan,
        "ln_ppl_ratio": log_ppl - log_ppl_ref,
        "ln_ppl_ratio_se": ratio_se,
        "ppl_ratio": math.exp(log_ppl - log_ppl_ref),
        "ppl_ratio_se": math.exp(log_ppl - log_ppl_ref) * ratio_se,
        "ppl_diff": ppl - ppl_ref,
        "ppl_diff_se": math.sqrt(max(diff_variance, 0.0)),
    }
    out["kl_mean"], out["kl_mean_se"] = mean_and_se(kl)
    out["kl_max"], out["kl_min"] = float(kl.max()), float(kl.min())
    out |= {f"kl_{name}": value for name, value in _percentiles(kl, KL_LADDER).items()}
    mean, se = mean_and_se(delta_p)
    out["delta_p_mean"], out["delta_p_mean_se"] = 100.0 * mean, 100.0 * se
    out["delta_p_max"], out["delta_p_min"] = 100.0 * delta_p.max(), 100.0 * delta_p.min()
    ladder = _percentiles(delta_p, DELTA_P_LADDER)
    out |= {f"delta_p_{name}": 100.0 * value for name, value in ladder.items()}
    mean_square, mean_square_se = mean_and_se(delta_p.pow(2))
    rms = math.sqrt(mean_square)
    out["delta_p_rms"] = 100.0 * rms
    out["delta_p_rms_se"] = 100.0 * 0.5 / rms * mean_square_se if rms > 0 else 0.0
    top = float(same.mean())
    out["same_top1"] = 100.0 * top
    out["same_top1_se"] = 100.0 * math.sqrt(top * (1 - top) / (count - 1)) if count > 1 else 0.0
    return {name: float(value) for name, value in out.items()}


def llama_cpp_report(scalars: dict[str, float]) -> list[str]:
    """The summary laid out as llama.cpp prints it after `--kl-divergence` (lines missing from
    `scalars` are left out; nothing at all for a run that measured none of them)."""
    if "kl_mean" not in scalars and "ppl" not in scalars:
        return []

    def line(label: str, name: str, scale: str = "{:10.6f}", error: bool = False) -> str | None:
        if name not in scalars or math.isnan(scalars[name]):
            return None
        text = f"{label}: {scale.format(scalars[name])}"
        if error and f"{name}_se" in scalars:
            text += f" ± {scale.format(scalars[f'{name}_se'])}"
        return text

    def percent(name: str) -> str:
        label = {"median": "Median ", "max": "Maximum", "min": "Minimum"}.get(name)
        if label is None:
            digits = name[1:]
            value = int(digits) / (10 ** (len(digits) - 2)) if len(digits) > 2 else int(digits)
            label = f"{value:4.1f}%  "
        return label

    lines = [
        "====== Perplexity statistics ======",
        line("Mean PPL(Q)                   ", "ppl", error=True),
        line("Mean PPL(base)                ", "ppl_reference", error=True),
        line("Cor(ln(PPL(Q)), ln(PPL(base)))", "ln_ppl_correlation", "{:6.2f}%"),
        line("Mean ln(PPL(Q)/PPL(base))     ", "ln_ppl_ratio", error=True),
        line("Mean PPL(Q)/PPL(base)         ", "ppl_ratio", error=True),
        line("Mean PPL(Q)-PPL(base)         ", "ppl_diff", error=True),
        "",
        "====== KL divergence statistics ======",
        line("Mean    KLD", "kl_mean", error=True),
    ]
    for name in ("max", *(name for name, _ in KL_LADDER), "min"):
        lines.append(line(f"{percent(name)} KLD", f"kl_{name}"))
    lines += ["", "====== Token probability statistics ======"]
    lines.append(line("Mean    Δp", "delta_p_mean", "{:6.3f}%", error=True))
    for name in ("max", *(name for name, _ in DELTA_P_LADDER), "min"):
        lines.append(line(f"{percent(name)} Δp", f"delta_p_{name}", "{:6.3f}%"))
    lines.append(line("RMS Δp    ", "delta_p_rms", "{:6.3f}%", error=True))
    lines.append(line("Same top p", "same_top1", "{:6.3f}%", error=True))
    return [text for text in lines if text is not None]
