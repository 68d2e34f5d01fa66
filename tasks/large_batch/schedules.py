"""Learning-rate scaling rules and schedules the reference methods share (a method may use them
or write its own)."""

from __future__ import annotations

import math

RULES = ("linear", "sqrt", "none")


def scaled_rate(base_rate: float, base_batch: int, batch_size: int, rule: str) -> float:
    """The peak rate at `batch_size` from the rate tuned at `base_batch`: linear scaling (Goyal
    et al. 2017, for SGD), square-root scaling (Hoffer et al. 2017; Malladi et al. 2022 for Adam;
    You et al. 2020 for LAMB), or none."""
    if rule not in RULES:
        raise ValueError(f"scaling rule must be one of {RULES}, got {rule!r}")
    ratio = batch_size / base_batch
    return base_rate * {"linear": ratio, "sqrt": math.sqrt(ratio), "none": 1.0}[rule]


def warmup_steps(warmup_examples: int, batch_size: int, max_steps: int) -> int:
    """Warmup over a fixed number of examples (Goyal et al.: fewer steps at a larger batch), at
    least one step and at most a quarter of the step cap."""
    return max(1, min(math.ceil(warmup_examples / batch_size), max_steps // 4))


def warmup_then_linear_decay(step: int, warmup: int, max_steps: int) -> float:
    """Linear warmup from 1/warmup to 1 over `warmup` steps, then linear decay to zero at the
    step cap (BERT's and LAMB's schedule)."""
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (max_steps - step) / max(1, max_steps - warmup))


def with_weight_decay(parameter_groups: list[dict], weight_decay: float) -> list[dict]:
    """The task's groups with `weight_decay` on "weights" and none on "norms_and_biases" (BERT's
    exclusion)."""
    return [
        {"params": g["params"], "weight_decay": weight_decay if g["name"] == "weights" else 0.0}
        for g in parameter_groups
    ]


def peak_rate(hp: dict, batch_size: int) -> float:
    """`hp["base_lr"]` scaled from `hp["base_batch"]` by `hp["scaling"]`, at most `hp["max_lr"]`."""
    return min(
        scaled_rate(hp["base_lr"], hp["base_batch"], batch_size, hp["scaling"]), hp["max_lr"]
    )


def warmup_decay_factor(hp: dict, step: int, batch_size: int, max_steps: int) -> float:
    """The reference methods' schedule: warmup over `hp["warmup_examples"]`, then linear decay."""
    warmup = warmup_steps(hp["warmup_examples"], batch_size, max_steps)
    return warmup_then_linear_decay(step, warmup, max_steps)
