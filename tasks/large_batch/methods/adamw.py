"""AdamW (torch.optim.AdamW, decoupled weight decay) with square-root learning-rate scaling.

The rate tuned at `base_batch` is multiplied by sqrt(B / base_batch) (Malladi et al. 2022's
square-root rule for adaptive methods), warmup over a fixed number of examples, then linear decay
to zero at the step cap. BERT's settings otherwise: betas (0.9, 0.98), eps 1e-6, weight decay
0.01 on weight matrices and embeddings only, gradient clipping at global norm 1.0.

Hyperparameters: `base_lr` is the best of a few rates tried at `base_batch` 16 on the smoke profile
(steps to target at batch 16 only); the scaling rule is then applied unchanged up to batch 256 and
held at that value (`max_lr`) beyond, the same ceiling rule for all four reference methods.
"""

import torch

from tasks.large_batch.schedules import peak_rate, warmup_decay_factor, with_weight_decay

HYPERPARAMETERS = {
    "base_lr": 2e-3,
    "base_batch": 16,
    "scaling": "sqrt",
    "max_lr": 8e-3,
    "warmup_examples": 1024,
    "weight_decay": 0.01,
    "grad_clip": 1.0,
}


def configure_optimizer(parameter_groups, batch_size, max_steps):
    hp = HYPERPARAMETERS
    groups = with_weight_decay(parameter_groups, hp["weight_decay"])
    return torch.optim.AdamW(groups, lr=peak_rate(hp, batch_size), betas=(0.9, 0.98), eps=1e-6)


def learning_rate(step, batch_size, max_steps):
    return warmup_decay_factor(HYPERPARAMETERS, step, batch_size, max_steps)
