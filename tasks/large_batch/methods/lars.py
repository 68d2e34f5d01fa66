"""LARS as You, Gitman and Ginsburg 2017 define it ("Large Batch Training of Convolutional
Networks", Algorithm 1; `tasks.large_batch.optimizers.Lars`): on each weight matrix and
embedding, local rate η·|w| / (|∇L| + β|w|) (eq. 6) times the global rate, applied to
(∇L + βw) with heavy-ball momentum 0.9; trust coefficient η = 0.001, β = 0.01. Norms and biases
take plain momentum SGD at the global rate times `norms_rate_ratio` (LARS's global rate is sized
for trust-ratio-scaled tensors and would blow them up), without weight decay. Gradient clipping
at global norm 1.0 (for the norms' plain SGD).

Warmup over a fixed number of examples (Goyal et al. 2017's gradual warmup, which You et al.
combine with LARS): fewer warmup steps at a larger batch. Search space: the global peak rate,
log-uniform over `peak_rate_range`; constant after warmup.
"""

from tasks.base import MethodRun
from tasks.large_batch.optimizers import Lars
from tasks.large_batch.schedules import steps_for_examples, warmup_factor, with_weight_decay

HYPERPARAMETERS = {
    "peak_rate_range": [2.0, 64.0],
    "norms_rate_ratio": 1 / 160,
    "trust_coefficient": 0.001,
    "warmup_examples": 1024,
    "weight_decay": 0.01,
    "grad_clip": 1.0,
}


def configure_optimizer(parameter_groups, peak_rate, batch_size, run: MethodRun):
    hp = run.hyperparameters
    weights, norms = with_weight_decay(parameter_groups, hp["weight_decay"])
    norms.update(lr=peak_rate * hp["norms_rate_ratio"], adapt=False)
    return Lars([weights, norms], lr=peak_rate, momentum=0.9,
                trust_coefficient=hp["trust_coefficient"])  # fmt: skip


def learning_rate(step, batch_size, run: MethodRun):
    warmup = steps_for_examples(run.hyperparameters["warmup_examples"], batch_size)
    return warmup_factor(step, warmup)
