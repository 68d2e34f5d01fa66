"""The pieces of cramming's two reference recipes, shared by each recipe's full-size and tiny
method files (`crammed-bert` and `crammed-bert-tiny`, `bert-original` and `bert-original-tiny`).

Every number of a recipe (sizes, rates, batch, schedule lengths) lives in the method file's
`HYPERPARAMETERS`, so it is part of the method's hash; this module only holds the architecture
choices and the shapes of the schedules, as the harness's model code does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from tasks.common.model import EncoderConfig

SIZES = ("hidden_size", "num_layers", "num_heads", "intermediate_size")


def crammed_bert_encoder(vocab_size: int, max_seq_len: int, hp: Mapping[str, Any]) -> EncoderConfig:
    """`arch=crammed-bert`: pre-norm with a final norm, LayerNorm eps 1e-12 (with shifts), no
    linear biases, GELU-GLU halving the FFN, scaled sinusoidal positions, tied embeddings without
    a head transform or decoder bias, sparse prediction. Dropout 0: bert-o4 pretrains in eval
    mode (`pretrain_in_train_mode: False`), which switches cramming's 0.1 dropout off."""
    return EncoderConfig(
        vocab_size=vocab_size,
        max_seq_len=max_seq_len,
        **{name: hp[name] for name in SIZES},
        norm="pre",
        activation="gelu-glu",
        bias=False,
        norm_bias=True,
        norm_eps=1e-12,
        positions="scaled-sinusoidal",
        embedding_norm=True,
        tie_embeddings=True,
        head_transform=False,
        sparse_prediction=True,
        dropout=0.0,
    )


def bert_original_encoder(
    vocab_size: int, max_seq_len: int, hp: Mapping[str, Any]
) -> EncoderConfig:
    """`arch=bert-original` (BERT as published): post-norm, GELU, biases everywhere, learned
    positions, embedding LayerNorm, LayerNorm eps 1e-12, tied embeddings, the dense + GELU +
    LayerNorm head transform, dense prediction, dropout 0.1 during pretraining."""
    return EncoderConfig(
        vocab_size=vocab_size,
        max_seq_len=max_seq_len,
        **{name: hp[name] for name in SIZES},
        norm="post",
        activation="gelu",
        bias=True,
        norm_eps=1e-12,
        positions="learned",
        embedding_norm=True,
        tie_embeddings=True,
        head_transform=True,
        sparse_prediction=False,
        dropout=0.1,
    )


def limited_decay_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Cramming's `limited_decay_keys`: no weight decay on biases and LayerNorm parameters."""
    exempt = {
        id(parameter)
        for module in model.modules()
        if isinstance(module, nn.LayerNorm)
        for parameter in module.parameters()
    }
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        (no_decay if id(parameter) in exempt or name.endswith("bias") else decay).append(parameter)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def budget_triangle(progress: float, base: float, falloff: float) -> float:
    """Cramming's `budget-triangle2` (base 0.25, falloff 0.25): from `base` of the peak rising
    linearly to the peak at 1 - falloff of the budget, then linearly to 0 at its end."""
    rising = base + progress * (1.0 - base) / (1.0 - falloff)
    return max(0.0, min(rising, 1.0 / falloff - progress / falloff))


def ramped_batch(progress: float, target: int, ramp_until: float) -> int:
    """Cramming's relative batch ramp: linear in the spent budget, reaching `target` sequences at
    `ramp_until` of it (the harness rounds up to whole micro-batches, as cramming does)."""
    return min(target, int(progress / ramp_until * target) + 1)


def warmup_linear_decay(step: int, warmup_steps: int, total_steps: int) -> float:
    """BERT's step schedule (transformers' polynomial decay, power 1): linear warm-up over
    `warmup_steps`, then linear decay to 0 at `total_steps` (cramming's end value 1e-7 of the
    rate is below float rounding here)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    return max(0.0, (total_steps - step) / (total_steps - warmup_steps))


def classic_adam(model: nn.Module, hp: Mapping[str, Any]) -> torch.optim.Optimizer:
    """`optim=adam_classic`: torch's Adam with L2 weight decay (coupled, not AdamW's)."""
    return torch.optim.Adam(
        limited_decay_groups(model, hp["weight_decay"]),
        lr=hp["lr"],
        betas=tuple(hp["betas"]),
        eps=hp["eps"],
    )


def decoupled_adam(model: nn.Module, hp: Mapping[str, Any]) -> torch.optim.Optimizer:
    """`optim=adam` (cramming's AdamW)."""
    return torch.optim.AdamW(
        limited_decay_groups(model, hp["weight_decay"]),
        lr=hp["lr"],
        betas=tuple(hp["betas"]),
        eps=hp["eps"],
    )
