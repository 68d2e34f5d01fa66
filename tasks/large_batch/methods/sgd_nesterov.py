"""SGD with Nesterov momentum (torch.optim.SGD, momentum 0.9, nesterov=True), linear
learning-rate scaling up to a ceiling.

Nado et al. 2021 show that a well-tuned Nesterov matches LAMB on BERT pretraining at large batch.
The rate tuned at `base_batch` scales linearly with the batch (Goyal et al. 2017) up to `max_lr`,
warmup over a fixed number of examples, then linear decay to zero at the step cap; weight decay
(coupled, L2) 0.01 on weight matrices and embeddings only; gradient clipping at global norm 1.0.

Hyperparameters: `base_lr` is the best of a few rates tried at `base_batch` 16 on the smoke profile
(steps to target at batch 16 only); the scaling rule is then applied unchanged up to batch 256 and
held at that value (`max_lr`) beyond, the same ceiling rule for all four reference methods.
"""

import torch

from tasks.large_batch.schedules import peak_rate, warmup_decay_factor, with_weight_decay

HYPERPARAMETERS = {
    "base_lr": 0.1,
    "base_batch": 16,
    "scaling": "linear",
    "max_lr": 1.6,
    "warmup_examples": 1024,
    "weight_decay": 0.01,
    "grad_clip": 1.0,
}


def configure_optimizer(parameter_groups, batch_size, max_steps):
    hp = HYPERPARAMETERS
    groups = with_weight_decay(parameter_groups, hp["weight_decay"])
    return torch.optim.SGD(groups, lr=peak_rate(hp, batch_size), momentum=0.9, nesterov=True)


def learning_rate(step, batch_size, max_steps):
    return warmup_decay_factor(HYPERPARAMETERS, step, batch_size, max_steps)
