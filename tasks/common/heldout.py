"""The held-out masked-LM loss: the evaluation every pretraining method is compared on.

It keeps BERT's Bernoulli masking at 15 % with a fixed seed (`mask_tokens`), whatever rate or
rule a method trains with, so losses compare across methods, seeds and earlier results.
"""

from __future__ import annotations

import torch

from tasks.common.masking import Vocabulary, mask_tokens
from tasks.common.model import MaskedLanguageModel
from tasks.common.precision import autocast

EVAL_MASK_RATE = 0.15  # fixed, whatever rate a method trains with, so losses compare
EVAL_SEED = 1234


@torch.no_grad()
def heldout_loss(
    model: MaskedLanguageModel,
    sequences: torch.Tensor,
    vocabulary: Vocabulary,
    device: torch.device,
    batch_size: int,
    precision: str,
) -> float:
    """Mean MLM loss over the validation sequences with a fixed masking (same for every run)."""
    generator = torch.Generator().manual_seed(EVAL_SEED)
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(sequences), batch_size):
        batch = sequences[start : start + batch_size]
        inputs, labels = mask_tokens(
            batch,
            EVAL_MASK_RATE,
            vocabulary.mask_id,
            vocabulary.special_ids,
            vocabulary.size,
            generator,
        )
        masked = int((labels != -100).sum())
        if masked == 0:
            continue
        with autocast(device, precision):
            loss = model(inputs.to(device), labels.to(device))
        total += float(loss) * masked
        count += masked
    model.train(was_training)
    return total / max(count, 1)
