"""BERT as published (Devlin et al. 2019), at a size chosen from the budget.

Post-norm blocks, GELU, biases everywhere, learned positions, dense prediction over the whole
sequence, dropout 0.1; AdamW (lr 1e-4, betas 0.9/0.999, eps 1e-6, weight decay 0.01 except on
biases and LayerNorm weights) with linear warm-up over the first 10% of the budget and linear
decay to zero; a constant batch; 15% masking; fp32 on a CPU, bf16 autocast on a GPU.
"""

import math

import torch

from tasks.cramming.model import EncoderConfig

HYPERPARAMETERS = {
    "lr": 1e-4,
    "warmup": 0.1,
    "mask_rate": 0.15,
    "precision": "auto",
    "grad_clip": None,
    "compile": False,
}

# (largest budget in seconds, architecture, batch): tiny for minutes on a CPU, mid-size for hours,
# BERT-base for the full day.
SCALES = (
    (900, {"hidden_size": 128, "num_layers": 2, "num_heads": 2, "intermediate_size": 512}, 16),
    (
        6 * 3600,
        {"hidden_size": 512, "num_layers": 8, "num_heads": 8, "intermediate_size": 2048},
        128,
    ),
    (
        math.inf,
        {"hidden_size": 768, "num_layers": 12, "num_heads": 12, "intermediate_size": 3072},
        256,
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
        norm="post",
        activation="gelu",
        bias=True,
        positions="learned",
        embedding_norm=True,
        tie_embeddings=True,
        sparse_prediction=False,
        dropout=0.1,
        **_scale()[1],
    )


def configure_optimizer(model):
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        (no_decay if name.endswith("bias") or "norm" in name else decay).append(parameter)
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
        lr=HYPERPARAMETERS["lr"],
        betas=(0.9, 0.999),
        eps=1e-6,
    )


def learning_rate(progress):
    warmup = HYPERPARAMETERS["warmup"]
    if progress < warmup:
        return progress / warmup
    return max(0.0, (1.0 - progress) / (1.0 - warmup))


def batch_size(progress):
    return _scale()[2]
