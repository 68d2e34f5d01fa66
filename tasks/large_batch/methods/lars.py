"""LARS (You et al. 2017) from pytorch_optimizer 4.1 (`LARS`), linear learning-rate scaling.

Layer-wise adaptation on weight matrices and embeddings: each tensor's step is
lr * trust_coefficient * |w| / (|g| + wd*|w|) times (g + wd*w), with momentum 0.9 (heavy ball,
not Nesterov); pytorch_optimizer applies plain SGD (no trust ratio, no weight decay) to vectors
and scalars (norms), which here get their own, smaller rate `norms_lr` (LARS's huge global rate
is meant for trust-ratio-scaled tensors). Both rates scale linearly with the batch from
`base_batch` (Goyal et al. / You et al.), warmup over a fixed number of examples, linear decay to
zero at the step cap; gradient clipping at global norm 1.0 (for the norms' plain SGD).

Hyperparameters: `base_lr` is the best of a few rates tried at `base_batch` 16 on the smoke profile
(steps to target at batch 16 only); the scaling rule is then applied unchanged up to batch 256 and
held at that value (`max_lr`) beyond, the same ceiling rule for all four reference methods.
"""

from pytorch_optimizer import LARS

from tasks.large_batch.schedules import peak_rate, warmup_decay_factor, with_weight_decay

HYPERPARAMETERS = {
    "base_lr": 8.0,
    "norms_lr": 0.05,
    "base_batch": 16,
    "scaling": "linear",
    "max_lr": 128.0,
    "trust_coefficient": 0.001,
    "warmup_examples": 1024,
    "weight_decay": 0.01,
    "grad_clip": 1.0,
}


def configure_optimizer(parameter_groups, batch_size, max_steps):
    hp = HYPERPARAMETERS
    rate = peak_rate(hp, batch_size)
    weights, norms = with_weight_decay(parameter_groups, hp["weight_decay"])
    norms["lr"] = rate * hp["norms_lr"] / hp["base_lr"]
    return LARS([weights, norms], lr=rate, momentum=0.9, trust_coefficient=hp["trust_coefficient"])


def learning_rate(step, batch_size, max_steps):
    return warmup_decay_factor(HYPERPARAMETERS, step, batch_size, max_steps)
