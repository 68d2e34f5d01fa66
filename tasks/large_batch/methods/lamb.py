"""LAMB (You et al. 2020) from pytorch_optimizer 4.1 (`Lamb`), square-root learning-rate scaling.

Which LAMB this is, against the paper and NVIDIA's NVLAMB (apex FusedLAMB, the MLPerf BERT
recipe):
- Weight decay is added to the Adam update *before* the trust ratio (`weight_decouple=False`), as
  in the paper and NVLAMB; it is 0.01 on weight matrices and embeddings, 0 on norms and biases.
- Global gradient pre-normalisation: gradients are scaled by min(1, 1/|g|) over all tensors
  (`pre_norm=True, max_grad_norm=1.0`), as NVLAMB does (the paper's v3 has none).
- Trust ratio |w| / |update| on *every* tensor, norms and biases included (apex's
  `use_nvlamb=True`; apex's default and the original TF LAMB skip layer adaptation where weight
  decay is 0). The trust ratio is not clipped above, but |w| is clamped at 10 (pytorch_optimizer's
  `clamp`): for large matrices (BERT-base's 768x768 at init has |w| ~ 15) this shortens the step
  relative to NVLAMB, which matters at large batch where the trust ratio sets the step size. At
  this task's smoke scale every tensor's norm is below 10.
- Bias correction on the first moment only (NVLAMB corrects both). The trust ratio rescales each
  tensor's update to lr*|w|, so this changes the update's direction in the first steps (larger
  weight on coordinates with small second moments), not its size.
Schedule: the rate tuned at `base_batch` times sqrt(B / base_batch) (You et al.'s rule), warmup
over a fixed number of examples, linear decay to zero at the step cap. Betas (0.9, 0.999), eps
1e-6.

Hyperparameters: `base_lr` is the best of a few rates tried at `base_batch` 16 on the smoke profile
(steps to target at batch 16 only); the scaling rule is then applied unchanged up to batch 256 and
held at that value (`max_lr`) beyond, the same ceiling rule for all four reference methods.
"""

from pytorch_optimizer import Lamb

from tasks.large_batch.schedules import peak_rate, warmup_decay_factor, with_weight_decay

HYPERPARAMETERS = {
    "base_lr": 4e-2,
    "base_batch": 16,
    "scaling": "sqrt",
    "max_lr": 0.16,
    "warmup_examples": 1024,
    "weight_decay": 0.01,
}


def configure_optimizer(parameter_groups, batch_size, max_steps):
    hp = HYPERPARAMETERS
    groups = with_weight_decay(parameter_groups, hp["weight_decay"])
    return Lamb(
        groups,
        lr=peak_rate(hp, batch_size),
        betas=(0.9, 0.999),
        eps=1e-6,
        weight_decouple=False,
        pre_norm=True,
        max_grad_norm=1.0,
    )


def learning_rate(step, batch_size, max_steps):
    return warmup_decay_factor(HYPERPARAMETERS, step, batch_size, max_steps)
