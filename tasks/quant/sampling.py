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
departure in a cell is its mean NLL minus the reference model's own.

The noise floor: the reference is run again on the same grid and prompts with other seeds
(`generation_seeds` .. 2 * `generation_seeds` - 1); its departure from the reference's own cells
is pure sampling noise, and the largest |departure| over the grid, F, is what taking a maximum
over that many cells gives by chance. A method's headline is max |departure| - F, its *departure
beyond the floor*. Intervals come from a bootstrap over prompts (the unit that is sampled: each
resample draws prompts with replacement and takes the same ones in all three grids, recomputing
every cell, F and the headline); 95% percentile intervals. The method's grid uses the
reference's own seeds, so a nearly exact format starts from the reference's very generations and
its noise is at most the floor's: judging it against F is conservative. A cell departs
significantly when the low end of its |departure| - F interval is above zero; the temperatures of
those cells are the band where the method departs (the anchor paper found 0.5 to 0.8 for 4-bit
formats).
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
    prompt_nll: list[float]
    """Mean NLL per prompt (over seeds and tokens), in prompt order: what the bootstrap draws."""


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


def sampling_grid(
    model, reference, prompts: torch.Tensor, config, first_seed: int = 0
) -> list[Cell]:
    """Every cell of the profile's grid for `model`, scored under `reference`, with seeds
    `first_seed` .. `first_seed` + generation_seeds - 1."""
    lengths = sorted(config.max_new_tokens)
    seeds = range(first_seed, first_seed + config.generation_seeds)
    cells = []
    for temperature, top_k in grid_settings(config.temperatures, config.top_ks):
        nll_rows, texts = [], []
        for seed in seeds:
            continuation = generate(model, prompts, temperature, top_k, lengths[-1], seed)
            nll_rows.append(reference_nll(reference, prompts, continuation).cpu())
            texts.extend(continuation.cpu().tolist())
        nll = torch.stack(nll_rows).double()  # (seeds, prompts, length)
        for length in lengths:
            per_prompt = nll[:, :, :length].mean(dim=(0, 2))
            cells.append(
                Cell(
                    temperature=temperature,
                    top_k=top_k,
                    max_new_tokens=length,
                    nll=float(per_prompt.mean()),
                    prompt_nll=per_prompt.tolist(),
                    distinct_2=sum(_ngram_share(t[:length], 2) for t in texts) / len(texts),
                    repetition=sum(1 - _ngram_share(t[:length], 4) for t in texts) / len(texts),
                )
            )
    return cells


def _key(cell: Cell) -> tuple[float, int, int]:
    return (cell.temperature, cell.top_k, cell.max_new_tokens)


@dataclass(frozen=True)
class CellDeparture:
    temperature: float
    top_k: int
    max_new_tokens: int
    departure: float
    """NLL_q - NLL_ref of the cell (nats per token)."""
    low: float
    high: float
    """95% bootstrap interval of the departure."""
    floor_departure: float
    """NLL_ref' - NLL_ref: the reference with other seeds, same cell."""
    beyond_low: float
    beyond_high: float
    """95% bootstrap interval of |departure| - F."""

    @property
    def significant(self) -> bool:
        return self.beyond_low > 0


@dataclass(frozen=True)
class FloorAnalysis:
    cells: list[CellDeparture]
    mean_abs: float
    max_abs: float
    floor: float
    """F: the largest |departure| of the reference against itself with other seeds."""
    beyond: float
    """max |departure| - F."""
    beyond_low: float
    beyond_high: float
    worst: CellDeparture

    @property
    def band(self) -> tuple[float, float] | None:
        """Lowest and highest temperature of a significant cell, None when there is none."""
        temperatures = [cell.temperature for cell in self.cells if cell.significant]
        return (min(temperatures), max(temperatures)) if temperatures else None


def against_floor(
    reference: list[Cell], floor: list[Cell], quantized: list[Cell], resamples: int, seed: int = 0
) -> FloorAnalysis:
    """Every cell's departure with its interval, the floor and the headline (module docstring)."""
    keys = [_key(cell) for cell in reference]
    by_key = [{_key(c): c for c in cells} for cells in (reference, floor, quantized)]
    ref, flo, qua = (
        torch.tensor([grid[key].prompt_nll for key in keys], dtype=torch.float64) for grid in by_key
    )  # each (cells, prompts)
    prompts = ref.shape[1]
    generator = torch.Generator().manual_seed(seed)
    draws = torch.randint(0, prompts, (resamples, prompts), generator=generator)

    def statistics(rows: torch.Tensor):  # rows: (resamples or 1, prompts) indices
        d = qua[:, rows].mean(-1) - ref[:, rows].mean(-1)  # (cells, resamples)
        f = flo[:, rows].mean(-1) - ref[:, rows].mean(-1)
        floor_max = f.abs().max(dim=0).values
        return d, floor_max, d.abs().max(dim=0).values - floor_max

    d, floor_max, beyond = statistics(torch.arange(prompts)[None])
    d_boot, floor_boot, beyond_boot = statistics(draws)
    excess_boot = d_boot.abs() - floor_boot[None]
    quantile = torch.tensor([0.025, 0.975], dtype=torch.float64)
    d_interval = torch.quantile(d_boot, quantile, dim=1)  # (2, cells)
    excess_interval = torch.quantile(excess_boot, quantile, dim=1)
    cells = [
        CellDeparture(
            temperature=key[0], top_k=key[1], max_new_tokens=key[2], departure=float(d[i, 0]),
            low=float(d_interval[0, i]), high=float(d_interval[1, i]),
            floor_departure=float(flo[i].mean() - ref[i].mean()),
            beyond_low=float(excess_interval[0, i]), beyond_high=float(excess_interval[1, i]),
        )
        for i, key in enumerate(keys)
    ]  # fmt: skip
    worst = max(cells, key=lambda cell: abs(cell.departure))
    low, high = torch.quantile(beyond_boot, quantile).tolist()
    return FloorAnalysis(
        cells=cells,
        mean_abs=float(d.abs().mean()),
        max_abs=abs(worst.departure),
        floor=float(floor_max[0]),
        beyond=float(beyond[0]),
        beyond_low=low,
        beyond_high=high,
        worst=worst,
    )


def cells_json(cells: list[Cell]) -> list[dict]:
    return [asdict(cell) for cell in cells]


def cells_from_json(rows: list[dict]) -> list[Cell]:
    return [Cell(**row) for row in rows]
