"""Cramming's final recipe (Geiping & Goldstein 2023), at a size chosen from the budget.

Pre-norm blocks with a final norm, no biases, gated GELU, scaled sinusoidal positions, tied
embeddings, sparse token prediction (the head only sees masked tokens), no dropout; AdamW (betas
0.9/0.98, eps 1e-12, weight decay 0.01 except on norms) with gradient clipping at 0.5 and the
"budget triangle": the learning rate starts at 25% of its peak, rises linearly to the peak at 75%
of the budget and falls linearly to zero at its end; the batch ramps linearly from the micro-batch
to its target by 60% of the budget; 25% masking; bf16 autocast and torch.compile on a GPU.
"""

import math

import torch

from tasks.cramming.model import EncoderConfig

HYPERPARAMETERS = {
    "lr": 1e-3,
    "mask_rate": 0.25,
    "precision": "auto",
    "grad_clip": 0.5,
    "compile": True,
    "batch_ramp_until": 0.6,
}

# (largest budget in seconds, architecture, (starting batch, target batch)).
SCALES = (
    (
        900,
        {"hidden_size": 128, "num_layers": 2, "num_heads": 2, "intermediate_size": 512},
        (16, 32),
    ),
    (
        6 * 3600,
        {"hidden_size": 512, "num_layers": 8, "num_heads": 8, "intermediate_size": 2048},
        (128, 1024),
    ),
    (
        math.inf,
        {"hidden_size": 768, "num_layers": 16, "num_heads": 12, "intermediate_size": 3072},
        (128, 4096),
    ),
)
_budget = {"seconds": 0.0}


def _scale():
    return next(scale for scale in SCALES if _budget["seconds"] <= scale[0])


def model_config(vocab_size, max_seq_len, budget_s):
    _budget["seconds"] = budget_s
    return EncoderConfig(
        vocab_size=vocab_size,
        max_seq_len=max_seq_len,
        norm="pre",
        activation="gated-gelu",
        bias=False,
        positions="scaled-sinusoidal",
        embedding_norm=True,
        tie_embeddings=True,
        sparse_prediction=True,
        dropout=0.0,
        **_scale()[1],
    )


def configure_optimizer(model):
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        (no_decay if "norm" in name or name.endswith("scale") else decay).append(parameter)
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
        lr=HYPERPARAMETERS["lr"],
        betas=(0.9, 0.98),
        eps=1e-12,
    )


def learning_rate(progress):
    if progress < 0.75:
        return 0.25 + 0.75 * progress / 0.75
    return max(0.0, (1.0 - progress) / 0.25)


def batch_size(progress):
    start, target = _scale()[2]
    ramp = min(1.0, progress / HYPERPARAMETERS["batch_ramp_until"])
    return round(start + (target - start) * ramp)
