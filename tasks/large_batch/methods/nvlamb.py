"""NVLAMB: NVIDIA's LAMB (the "Pretraining BERT with Layer-wise Adaptive Learning Rates" post;
apex FusedLAMB in the MLPerf BERT recipe), `tasks.large_batch.optimizers.Lamb` with
`grad_pre_normalization=1.0`: before the moments, all gradients are multiplied by
min(1, 1/|g|), |g| their global norm; then You et al.'s Algorithm 2 unchanged (bias correction
of both moments, weight decay inside the trust ratio, trust ratio on every tensor: apex's
`use_nvlamb=True`; apex's default skips it where weight decay is 0). NVIDIA's post writes the
pre-normalisation as g/|g|; apex divides only when |g| > 1, which is what this does.

Settings and search space as `lamb.py` (linear-epoch warmup: a fixed number of warmup steps).
"""

from tasks.base import MethodRun
from tasks.large_batch.optimizers import Lamb
from tasks.large_batch.schedules import warmup_factor, with_weight_decay

HYPERPARAMETERS = {
    "peak_rate_range": [3e-3, 1e-1],
    "warmup_steps": 8,
    "weight_decay": 0.01,
    "grad_pre_normalization": 1.0,
}


def configure_optimizer(parameter_groups, peak_rate, batch_size, run: MethodRun):
    hp = run.hyperparameters
    groups = with_weight_decay(parameter_groups, hp["weight_decay"])
    return Lamb(
        groups,
        lr=peak_rate,
        betas=(0.9, 0.999),
        eps=1e-6,
        grad_pre_normalization=hp["grad_pre_normalization"],
    )


def learning_rate(step, batch_size, run: MethodRun):
    return warmup_factor(step, run.hyperparameters["warmup_steps"])
