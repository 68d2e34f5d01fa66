"""Sampling sensitivity: how a quantized model's generations drift from the reference's across a
grid of decoding settings (after "Understanding the Impact of Post-Training Quantization on Large
Language Models", which found 4-bit models most sensitive at temperatures 0.5 to 0.8).

For each temperature (0 = greedy) and top-k (0 = no top-k; greedy ignores it, so it is run once),
every fixed prompt is continued for the largest `max_new_tokens` with each fixed seed; the shorter
lengths of the grid are the prefixes of those generations (with the same seed and no early stop,
a shorter generation is exactly that prefix). End-of-sequence tokens are suppressed so every
generation has the full length.

Each generation is scored by its mean negative log-likelihood per token under the *reference*
model (lower: text the reference finds likelier), distinct-2 (unique token bigrams over all
bigrams) and repetition (seq-rep-4 of Welleck et al.: 1 - unique 4-grams / 4-grams). A method's
departure is its mean NLL minus the reference model's own, cell by cell.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch


@dataclass(frozen=True)
class Cell:
    """One grid cell's averages over prompts and seeds."""

    temperature: float
    top_k: int
    max_new_tokens: int
    nll: float
    distinct_2: float
    repetition: float


def grid_settings(temperatures, top_ks) -> list[tuple[float, int]]:
    settings = []
    for temperature in temperatures:
        for top_k in [0] if temperature == 0 else top_ks:
            settings.append((float(temperature), int(top_k)))
    return settings


def _ngram_share(row: list[int], n: int) -> float:
    grams = [tuple(row[i : i + n]) for i in range(len(row) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 1.0


@torch.no_grad()
def generate(model, prompts: torch.Tensor, temperature: float, top_k: int, length: int, seed: int):
    """Continuations (batch, length) of the prompts with fixed-length sampling or greedy."""
    torch.manual_seed(seed)
    sampling = temperature > 0
    options = {"do_sample": sampling, "max_new_tokens": length, "min_new_tokens": length}
    if sampling:
        options.update(temperature=temperature, top_k=top_k or None, top_p=1.0)
    else:
        options.update(temperature=None, top_k=None, top_p=None)
    output = model.generate(
        prompts,
        attention_mask=torch.ones_like(prompts),
        pad_token_id=model.config.pad_token_id or 0,
        **options,
    )
    return output[:, prompts.shape[1] :]


@torch.no_grad()
def reference_nll(reference, prompts: torch.Tensor, continuations: torch.Tensor) -> torch.Tensor:
    """Per-token NLL (batch, length) of `continuations` after `prompts` under the reference."""
    tokens = torch.cat([prompts, continuations], dim=1)
    logits = reference(input_ids=tokens).logits[:, prompts.shape[1] - 1 : -1].float()
    log_probs = torch.log_softmax(logits, dim=-1)
    return -log_probs.gather(2, continuations[..., None]).squeeze(2)


def sampling_grid(model, reference, prompts: torch.Tensor, config) -> list[Cell]:
    """Every cell of the profile's grid for `model`, scored under `reference`."""
    lengths = sorted(config.max_new_tokens)
    cells = []
    for temperature, top_k in grid_settings(config.temperatures, config.top_ks):
        nll_rows, texts = [], []
        for seed in range(config.generation_seeds):
            continuation = generate(model, prompts, temperature, top_k, lengths[-1], seed)
            nll_rows.append(reference_nll(reference, prompts, continuation).cpu())
            texts.extend(continuation.cpu().tolist())
        nll = torch.cat(nll_rows)
        for length in lengths:
            cells.append(
                Cell(
                    temperature=temperature,
                    top_k=top_k,
                    max_new_tokens=length,
                    nll=float(nll[:, :length].double().mean()),
                    distinct_2=sum(_ngram_share(t[:length], 2) for t in texts) / len(texts),
                    repetition=sum(1 - _ngram_share(t[:length], 4) for t in texts) / len(texts),
                )
            )
    return cells


@dataclass(frozen=True)
class Departure:
    mean_abs: float
    max_abs: float
    worst: Cell
    """The quantized cell where |NLL - reference NLL| is largest."""


def departure(reference: list[Cell], quantized: list[Cell]) -> Departure:
    """How far the quantized model's NLL curve departs from the reference's, cell by cell."""
    keyed = {(c.temperature, c.top_k, c.max_new_tokens): c for c in reference}
    gaps = [
        (abs(q.nll - keyed[(q.temperature, q.top_k, q.max_new_tokens)].nll), q) for q in quantized
    ]
    worst_gap, worst = max(gaps, key=lambda pair: pair[0])
    return Departure(sum(g for g, _ in gaps) / len(gaps), worst_gap, worst)


def cells_json(cells: list[Cell]) -> list[dict]:
    return [asdict(cell) for cell in cells]


def cells_from_json(rows: list[dict]) -> list[Cell]:
    return [Cell(**row) for row in rows]
