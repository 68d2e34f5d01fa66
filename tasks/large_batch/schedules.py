"""Warmup rules and weight-decay groups the reference methods share (a method may use them or
write its own). The peak rate is the harness's choice from the method's declared range; only
the warmup rule across batch sizes is the method's, as in each optimizer's paper."""

from __future__ import annotations

import math


def warmup_factor(step: int, warmup_steps: int) -> float:
    """Linear warmup from 1/warmup to 1 over `warmup_steps` steps, then the constant peak rate
    (no decay: the task gives no horizon, so no batch size anneals faster than another)."""
    return min(1.0, (step + 1) / max(1, warmup_steps))


def steps_for_examples(warmup_examples: int, batch_size: int) -> int:
    """Warmup over a fixed number of examples (Goyal et al. 2017's five epochs): fewer steps at
    a larger batch, at least one."""
    return max(1, math.ceil(warmup_examples / batch_size))


def with_weight_decay(parameter_groups: list[dict], weight_decay: float) -> list[dict]:
    """The task's groups with `weight_decay` on "weights" and none on "norms_and_biases" (BERT's
    exclusion)."""
    return [
        {"params": g["params"], "weight_decay": weight_decay if g["name"] == "weights" else 0.0}
        for g in parameter_groups
    ]
