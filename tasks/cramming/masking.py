"""BERT's masked-language-model corruption: the rule every method trains and is evaluated with.

Of the non-special positions, a fraction `rate` is chosen; of those, 80% become `[MASK]`, 10% a
random non-special token and 10% stay as they are (Devlin et al. 2019). Labels are the original
tokens at chosen positions and -100 elsewhere.
"""

from __future__ import annotations

import torch

IGNORE = -100


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
