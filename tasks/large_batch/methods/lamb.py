"""LAMB exactly as You et al. 2020 define it ("Large Batch Optimization for Deep Learning:
Training BERT in 76 minutes", Algorithm 2; `tasks.large_batch.optimizers.Lamb`): Adam moments
with bias correction of both, weight decay λ added to the Adam ratio *inside* the trust ratio,
and every tensor moved by exactly rate·|x| per step (φ the identity, trust ratio 1 where a norm
is 0). Betas (0.9, 0.999), eps 1e-6, λ = 0.01 on weight matrices and embeddings, 0 on norms and
biases (which still get the trust ratio, as Algorithm 2 applies it to every layer). No gradient
clipping: Algorithm 2 has none (NVLAMB, `nvlamb.py`, adds global pre-normalisation).

Warmup: the paper's "linear-epoch warmup" (warmup epochs grow linearly with the batch size, so
the number of warmup *steps* is the same at every batch), then the peak rate, which the
harness searches log-uniformly over `peak_rate_range`. The paper pairs this with square-root
rate scaling; here the search at each batch size replaces any scaling rule.
"""

from tasks.base import MethodRun
from tasks.large_batch.optimizers import Lamb
from tasks.large_batch.schedules import warmup_factor, with_weight_decay

HYPERPARAMETERS = {
    "peak_rate_range": [3e-3, 1e-1],
    "warmup_steps": 8,
    "weight_decay": 0.01,
}


def configure_optimizer(parameter_groups, peak_rate, batch_size, run: MethodRun):
    groups = with_weight_decay(parameter_groups, run.hyperparameters["weight_decay"])
    return Lamb(groups, lr=peak_rate, betas=(0.9, 0.999), eps=1e-6)


def learning_rate(step, batch_size, run: MethodRun):
    return warmup_factor(step, run.hyperparameters["warmup_steps"])
