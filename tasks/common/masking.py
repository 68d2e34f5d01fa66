"""BERT's masked-language-model corruption: the rule every method trains and is evaluated with.

Of the non-special positions, a fraction `rate` is chosen; of those, 80% become `[MASK]`, 10% a
random non-special token and 10% stay as they are (Devlin et al. 2019). Labels are the original
tokens at chosen positions and -100 elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

IGNORE = -100


@dataclass(frozen=True)
class Vocabulary:
    """What masking needs to know of a tokenizer: the [MASK] id, the special tokens' ids (the
    first ids of the vocabulary) and the vocabulary's size."""

    mask_id: int
    special_ids: torch.Tensor
    size: int


def mask_tokens(
    input_ids: torch.Tensor,
    rate: float,
    mask_id: int,
    special_ids: torch.Tensor,
    vocab_size: int,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (corrupted inputs, labels) for a batch of token ids (CPU tensors)."""
    ids = input_ids.long()
    candidates = ~torch.isin(ids, special_ids)
    chosen = (torch.rand(ids.shape, generator=generator) < rate) & candidates
    labels = torch.where(chosen, ids, torch.full_like(ids, IGNORE))
    roll = torch.rand(ids.shape, generator=generator)
    corrupted = ids.clone()
    corrupted[chosen & (roll < 0.8)] = mask_id
    replace = chosen & (roll >= 0.8) & (roll < 0.9)
    low = len(special_ids)  # special tokens occupy the first ids of the vocabulary
    corrupted[replace] = torch.randint(low, vocab_size, (int(replace.sum()),), generator=generator)
    return corrupted, labels


def masked_per_sequence(rate: float, seq_len: int) -> int:
    """How many positions of each sequence the exact-count rule corrupts (cramming's rounding)."""
    return max(1, round(rate * seq_len))


def mask_exact(
    input_ids: torch.Tensor,
    rate: float,
    mask_id: int,
    special_ids: torch.Tensor,
    vocab_size: int,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Training masking with a fixed count, so every batch has the same shapes (cramming's
    patched collator): exactly `masked_per_sequence(rate, seq_len)` positions per row, of which
    the first round(80 %) become `[MASK]`, the next round(10 %) a random non-special token and
    the rest stay. Unlike cramming, special positions are chosen last (random order among the
    others first), so `[CLS]`/`[SEP]` are only corrupted when a row has too few other tokens.
    """
    ids = input_ids.long()
    count = masked_per_sequence(rate, ids.shape[1])
    keys = torch.rand(ids.shape, generator=generator) + torch.isin(ids, special_ids).float()
    chosen = torch.argsort(keys, dim=1)[:, :count]
    labels = torch.full_like(ids, IGNORE)
    labels.scatter_(1, chosen, ids.gather(1, chosen))
    corrupted = ids.clone()
    to_mask, to_randomise = round(0.8 * count), round(0.9 * count)
    corrupted.scatter_(1, chosen[:, :to_mask], mask_id)
    replaced = chosen[:, to_mask:to_randomise]
    low = len(special_ids)  # special tokens occupy the first ids of the vocabulary
    random_ids = torch.randint(low, vocab_size, replaced.shape, generator=generator)
    corrupted.scatter_(1, replaced, random_ids)
    return corrupted, labels
