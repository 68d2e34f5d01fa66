"""Task `quant` against llama.cpp's `perplexity --kl-divergence`: its windowing of the raw test
text (BOS at position 0, second half scored) and every statistic of its summary, recomputed here
directly with llama.cpp's running sums and formulas; the noise floor of the sampling grid."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_cli
from quant_tiny import run_quant, scalars, tiny_model, tiny_tokenizer, write_mirror

from tasks.quant.compare import compare_logits, llama_cpp_report, summarize
from tasks.quant.data import bos_token, llama_cpp_windows
from tasks.quant.sampling import Cell, against_floor


def _llama_cpp_summary(ref_logits: np.ndarray, q_logits: np.ndarray, tokens: np.ndarray):
    """llama.cpp's kl_divergence(), transcribed: per window, positions first..n-2 predict the
    next token; running sums; then the printed statistics."""
    n = tokens.shape[1]
    first = n // 2
    s = dict.fromkeys(("nll", "nll2", "base", "base2", "cross", "kld", "kld2", "dp", "dp2",
                       "dp4", "same", "count"), 0.0)  # fmt: skip
    klds, dps = [], []
    for window in range(tokens.shape[0]):
        for j in range(first, n - 1):
            tok = tokens[window, j + 1]
            log_q = q_logits[window, j] - np.logaddexp.reduce(q_logits[window, j])
            log_p = ref_logits[window, j] - np.logaddexp.reduce(ref_logits[window, j])
            nll, nll_base = -log_q[tok], -log_p[tok]
            kld = float(np.sum(np.exp(log_p) * (log_p - log_q)))
            dp = math.exp(-nll) - math.exp(-nll_base)
            for key, value in (("nll", nll), ("nll2", nll * nll), ("base", nll_base),
                               ("base2", nll_base**2), ("cross", nll * nll_base), ("kld", kld),
                               ("kld2", kld * kld), ("dp", dp), ("dp2", dp * dp),
                               ("dp4", dp**4), ("count", 1)):  # fmt: skip
                s[key] += value
            s["same"] += int(np.argmax(log_q) == np.argmax(log_p))
            klds.append(kld)
            dps.append(dp)
    count = s["count"]

    def mean_and_uncertainty(total, total2):
        f = total / count
        df = total2 / count - f * f
        return f, (math.sqrt(df / (count - 1)) if df > 0 and count > 10 else 0.0)

    def percentile(values, fraction):
        p = fraction * (len(values) - 1)
        ip = int(p)
        p -= ip
        return (1 - p) * values[ip] + p * values[min(ip + 1, len(values) - 1)]

    klds, dps = sorted(klds), sorted(dps)
    log_ppl, log_ppl_unc = mean_and_uncertainty(s["nll"], s["nll2"])
    log_base, log_base_unc = mean_and_uncertainty(s["base"], s["base2"])
    cov = (s["cross"] / count - (s["nll"] / count) * (s["base"] / count)) / (count - 1)
    ppl, base = math.exp(log_ppl), math.exp(log_base)
    ratio_unc = math.sqrt(log_ppl_unc**2 + log_base_unc**2 - 2 * cov)
    out = {
        "ppl": ppl, "ppl_se": ppl * log_ppl_unc, "ppl_reference": base,
        "ppl_reference_se": base * log_base_unc,
        "ln_ppl_correlation": 100 * cov / (log_ppl_unc * log_base_unc),
        "ln_ppl_ratio": log_ppl - log_base, "ln_ppl_ratio_se": ratio_unc,
        "ppl_ratio": math.exp(log_ppl - log_base),
        "ppl_ratio_se": math.exp(log_ppl - log_base) * ratio_unc,
        "ppl_diff": ppl - base,
        "ppl_diff_se": math.sqrt((ppl * log_ppl_unc) ** 2 + (base * log_base_unc) ** 2
                                 - 2 * ppl * base * cov),
        "kl_max": klds[-1], "kl_min": klds[0], "scored_tokens": count,
        "delta_p_max": 100 * dps[-1], "delta_p_min": 100 * dps[0],
    }  # fmt: skip
    out["kl_mean"], out["kl_mean_se"] = mean_and_uncertainty(s["kld"], s["kld2"])
    middle = len(klds) // 2
    out["kl_median"] = (klds[middle] + klds[middle - 1]) / 2 if len(klds) % 2 == 0 else klds[middle]
    for name, fraction in (
        ("p999", 0.999),
        ("p99", 0.99),
        ("p95", 0.95),
        ("p90", 0.9),
        ("p10", 0.1),
        ("p05", 0.05),
        ("p01", 0.01),
        ("p001", 0.001),
    ):
        out[f"kl_{name}"] = percentile(klds, fraction)
    mean, unc = mean_and_uncertainty(s["dp"], s["dp2"])
    out["delta_p_mean"], out["delta_p_mean_se"] = 100 * mean, 100 * unc
    out["delta_p_median"] = 100 * (
        (dps[middle] + dps[middle - 1]) / 2 if len(dps) % 2 == 0 else dps[middle]
    )
    for name, fraction in (("p999", 0.999), ("p99", 0.99), ("p95", 0.95), ("p90", 0.9),
                           ("p75", 0.75), ("p25", 0.25), ("p10", 0.1), ("p05", 0.05),
                           ("p01", 0.01), ("p001", 0.001)):  # fmt: skip
        out[f"delta_p_{name}"] = 100 * percentile(dps, fraction)
    mse, mse_unc = mean_and_uncertainty(s["dp2"], s["dp4"])
    out["delta_p_rms"], out["delta_p_rms_se"] = (
        100 * math.sqrt(mse),
        100 * 0.5 / math.sqrt(mse) * mse_unc,
    )
    same = s["same"] / count
    out["same_top1"] = 100 * same
    out["same_top1_se"] = 100 * math.sqrt(same * (1 - same) / (count - 1))
    return out


@pytest.fixture(scope="module")
def mirror(tmp_path_factory) -> Path:
    return write_mirror(tmp_path_factory.mktemp("mirror"))


def test_llama_cpp_windows_put_bos_first_in_every_window_of_the_raw_test_text(mirror):
    tokenizer = tiny_tokenizer(add_bos=True)
    text = (mirror / "wikitext-2-raw" / "test.txt").read_text()
    bos = bos_token(tokenizer)
    assert bos == tokenizer.convert_tokens_to_ids("[BOS]")
    assert bos_token(tiny_tokenizer(add_bos=False)) is None  # GPT-2-like: no BOS added
    stream = [bos, *tokenizer(text, add_special_tokens=False)["input_ids"]]
    windows = llama_cpp_windows(tokenizer, text, 16, 0)
    assert windows.shape == (len(stream) // 16, 16)
    for i, window in enumerate(windows.tolist()):
        assert window[0] == bos and window[1:] == stream[i * 16 + 1 : (i + 1) * 16]
    assert llama_cpp_windows(tokenizer, text, 16, 3).shape == (3, 16)  # --chunks 3


def test_every_llama_cpp_statistic_matches_a_direct_computation(mirror):
    tokenizer = tiny_tokenizer(add_bos=True)
    text = (mirror / "wikitext-2-raw" / "test.txt").read_text()
    windows = llama_cpp_windows(tokenizer, text, 16, 0)
    reference = tiny_model(len(tokenizer))
    quantized = tiny_model(len(tokenizer))
    with torch.no_grad():
        for parameter in quantized.parameters():  # a 'quantization error' of a few percent
            parameter.add_(0.05 * parameter.abs().mean() * torch.randn_like(parameter))
        ref_logits = reference(input_ids=windows).logits.double()
        q_logits = quantized(input_ids=windows).logits.double()
    half = windows.shape[0] // 2  # two batches, as a run compares them
    batches = [slice(0, half), slice(half, None)]
    ours = summarize([compare_logits(ref_logits[b], q_logits[b], windows[b]) for b in batches])
    direct = _llama_cpp_summary(ref_logits.numpy(), q_logits.numpy(), windows.numpy())
    assert direct["scored_tokens"] == windows.shape[0] * 7 > 100  # llama.cpp's minimum
    assert direct["kl_mean"] > 0 and 0 < direct["same_top1"] < 100
    assert set(direct) == set(ours)
    for name, value in direct.items():
        assert ours[name] == pytest.approx(value, rel=1e-6, abs=1e-9), name
    report = "\n".join(llama_cpp_report(ours))
    for label in ("Mean PPL(Q)", "Cor(ln(PPL(Q)), ln(PPL(base)))", "Mean ln(PPL(Q)/PPL(base))",
                  "Maximum KLD", "99.9%   KLD", " 0.1%   KLD", "Minimum KLD", "Mean    Δp",
                  "75.0%   Δp", "RMS Δp", "Same top p"):  # fmt: skip
        assert label in report, label


def test_a_run_on_the_llama_cpp_protocol_stores_the_summary_and_show_prints_it(
    mirror, tmp_path, monkeypatch
):
    tokenizer = tiny_tokenizer(add_bos=True)
    model_dir = tmp_path / "model"
    tiny_model(len(tokenizer)).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    settings = ["protocol=llama.cpp", "eval_windows=0", "sensitivity_max_layers=1"]
    outcome = run_quant(model_dir, mirror, tmp_path, "bnb-nf4", monkeypatch, settings)
    assert outcome.status == "succeeded", outcome.error
    nf4 = scalars(outcome)
    windows = llama_cpp_windows(
        tokenizer, (mirror / "wikitext-2-raw" / "test.txt").read_text(), 16, 0
    )
    assert nf4["scored_tokens"] == windows.shape[0] * 7
    assert nf4["kl_min"] <= nf4["kl_p001"] <= nf4["kl_median"] <= nf4["kl_p999"] <= nf4["kl_max"]
    assert nf4["delta_p_min"] <= nf4["delta_p_p25"] <= nf4["delta_p_p75"] <= nf4["delta_p_max"]
    assert -100 <= nf4["ln_ppl_correlation"] <= 100
    shown = run_cli("show", outcome.run_id, "--db", f"sqlite:///{tmp_path / 's.db'}")
    assert shown.returncode == 0, shown.stderr
    assert "====== KL divergence statistics ======" in shown.stdout
    assert f"Mean    KLD: {nf4['kl_mean']:10.6f} ± {nf4['kl_mean_se']:10.6f}" in shown.stdout


def _cells(nll_by_temperature: dict[float, list[float]]) -> list[Cell]:
    return [Cell(t, 0, 8, sum(nll) / len(nll), 1.0, 0.0, nll)
            for t, nll in nll_by_temperature.items()]  # fmt: skip


def test_the_floor_absorbs_seed_noise_and_a_real_departure_is_found_with_its_band():
    generator = torch.Generator().manual_seed(1)
    noise = lambda: (2.0 + 0.05 * torch.randn(40, generator=generator)).tolist()  # noqa: E731
    temperatures = (0.0, 0.2, 0.5, 0.6, 0.8, 1.2)
    reference = _cells({t: noise() for t in temperatures})
    floor = _cells({t: noise() for t in temperatures})
    same = _cells({t: noise() for t in temperatures})  # a model equal to the reference
    shifted = _cells({t: [x + (0.3 if t in (0.5, 0.6) else 0.0) for x in noise()]
                      for t in temperatures})  # fmt: skip
    quiet = against_floor(reference, floor, same, resamples=500)
    assert quiet.floor > 0 and quiet.max_abs > 0  # sampling noise alone departs
    assert quiet.band is None and not any(cell.significant for cell in quiet.cells)
    loud = against_floor(reference, floor, shifted, resamples=500)
    assert loud.floor == pytest.approx(quiet.floor)
    assert loud.band == (0.5, 0.6)
    assert loud.beyond == pytest.approx(loud.max_abs - loud.floor)
    assert 0 < loud.beyond_low < loud.beyond < loud.beyond_high
    assert loud.worst.temperature in (0.5, 0.6) and loud.worst.low < 0.3 < loud.worst.high
