"""AdamW (torch.optim.AdamW: Loshchilov and Hutter 2019, Algorithm 2, decoupled weight decay)
with BERT's settings (Devlin et al. 2019): betas (0.9, 0.98) as in RoBERTa, eps 1e-6, weight
decay 0.01 on weight matrices and embeddings only, gradient clipping at global norm 1.0, and a
warmup over a fixed number of *steps* (BERT: the first 10,000 of 1M), whatever the batch size.

Search space: the peak rate, log-uniform over `peak_rate_range`; after warmup it stays constant.
`warmup_steps` is a smoke-scale choice (a few percent of the largest batch's steps), not tuned.
"""

import torch

from tasks.base import MethodRun
from tasks.large_batch.schedules import warmup_factor, with_weight_decay

HYPERPARAMETERS = {
    "peak_rate_range": [1e-3, 3e-2],
    "warmup_steps": 8,
    "weight_decay": 0.01,
    "grad_clip": 1.0,
}


def configure_optimizer(parameter_groups, peak_rate, batch_size, run: MethodRun):
    groups = with_weight_decay(parameter_groups, run.hyperparameters["weight_decay"])
    return torch.optim.AdamW(groups, lr=peak_rate, betas=(0.9, 0.98), eps=1e-6)


def learning_rate(step, batch_size, run: MethodRun):
    return warmup_factor(step, run.hyperparameters["warmup_steps"])
