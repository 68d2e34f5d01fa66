"""SGD with Nesterov momentum (torch.optim.SGD, momentum 0.9, nesterov=True; Sutskever et al.
2013's form), which Nado et al. 2021 ("A Large Batch Optimizer Reality Check") show matches
LAMB on BERT pretraining when tuned. Weight decay (coupled, L2) 0.01 on weight matrices and
embeddings only; gradient clipping at global norm 1.0.

Warmup over a fixed number of examples (Goyal et al. 2017's gradual warmup): fewer warmup steps
at a larger batch. Search space: the peak rate, log-uniform over `peak_rate_range`; constant
after warmup.
"""

import torch

from tasks.base import MethodRun
from tasks.large_batch.schedules import steps_for_examples, warmup_factor, with_weight_decay

HYPERPARAMETERS = {
    "peak_rate_range": [5e-2, 1.6],
    "warmup_examples": 1024,
    "weight_decay": 0.01,
    "grad_clip": 1.0,
}


def configure_optimizer(parameter_groups, peak_rate, batch_size, run: MethodRun):
    groups = with_weight_decay(parameter_groups, run.hyperparameters["weight_decay"])
    return torch.optim.SGD(groups, lr=peak_rate, momentum=0.9, nesterov=True)


def learning_rate(step, batch_size, run: MethodRun):
    warmup = steps_for_examples(run.hyperparameters["warmup_examples"], batch_size)
    return warmup_factor(step, warmup)
