"""The paper's own conventions (Stroebl, Kapoor & Narayanan, "Inference Scaling fLaws"; its code:
github.com/benediktstroebl/inference-scaling-limits, `evalplus/scaling_curves.ipynb` and
`evalplus/visualizations.ipynb`), reported beside the task's worst-case ones, each labelled.

Where they differ from `analysis.py`:

- **False-negative filter.** The paper drops 14 HumanEval tasks whose base tests reject correct
  programs (`PAPER_FALSE_NEGATIVE_TASKS`, the fixed list in both its notebooks, which it found
  on its own models' EvalPlus results, where the plus status is computed even after a base
  failure) before any number; the worst-case numbers keep every task. Applied as that list, the
  filter means here what it means in the paper, whatever this task's verdicts. It could not be
  recomputed from them: the strong tests include the base tests (a sample that fails a base
  input fails them too) and the first-failure stop runs no plus input after a base failure. So
  the task's own `verifier_false_negative_tasks` (samples that pass the strong tests and fail
  the weak ones) is 0 by construction on HumanEval+ and with a split; it can be nonzero only
  where the weak tests expect other values than the strong ones (MBPP's own asserts, MBPP+).
- **Conditional accuracy.** The paper's headline line ("Conditional Pass@1") averages
  P(strong | weak) over the tasks with at least one weak pass only; the worst-case ceiling
  scores a task without one as 0.
- **k\\* with abstention.** The paper sets k\\* = 0 (abstain) when every utility is negative; the
  worst-case k\\* is the best k in 1..n even then.
- **False-positive rate.** The paper averages P(wrong | submitted) by task, and by K (the
  position of the first weak pass; a task counts at every K its first pass can fall on); the
  worst-case rate is pooled over samples (a false-discovery rate).
- **Two-type model, as written** (`visualizations.ipynb`, `calculate_model_params` and
  `get_k_opt`): tasks split at a strong pass rate of 0.5; r_i the mean strong rate of each type,
  p_i its share, soundness s = (1 - mean weak rate - mean strong rate + mean P(strong | weak) x
  mean weak rate) / (1 - mean strong rate), completeness 1; the expected value of attempt j is
  (r_1 b_1 + r_2 b_2 - C ((1 - r_1)(1 - s) b_1 + (1 - r_2)(1 - s) b_2)) x
  (beta_1^(j-1) b_1 + beta_2^(j-1) b_2) with beta_i = s (1 - r_i) and b_i the posterior of type
  i after j - 1 rejections; utility(k) sums it over j <= k, and k\\* abstains when its utility is
  negative. One difference: the paper's strong rate is EvalPlus's plus status alone (EvalPlus
  runs the plus inputs even after a base failure); here it is base and plus (this task stops at
  the first failing input). Wherever the paper conditions on a weak pass (resampling, the
  conditional accuracy, the false-positive rates) the two are the same; only this model's
  per-task strong rate r_i differs, counting a sample that passes plus but fails base as wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tasks.verifiers.analysis import TaskCounts, utility

PAPER_FALSE_NEGATIVE_TASKS = frozenset(
    f"HumanEval/{i}" for i in (141, 20, 107, 9, 116, 114, 92, 6, 88, 142, 126, 136, 62, 83)
)


def false_negative_filter(tasks: Sequence[TaskCounts]) -> list[TaskCounts]:
    """The tasks the paper keeps (HumanEval ids only; other datasets keep every task)."""
    return [t for t in tasks if t.task_id not in PAPER_FALSE_NEGATIVE_TASKS]


def conditional_accuracy(tasks: Sequence[TaskCounts]) -> float:
    """Mean P(strong | weak) over the tasks with at least one weak pass."""
    values = [t.strong_given_weak for t in tasks if t.strong_given_weak is not None]
    return float(np.mean(values)) if values else 0.0


def optimal_k_with_abstention(
    tasks: Sequence[TaskCounts], cost: float, max_k: int
) -> tuple[int, float]:
    """The k in 1..max_k with the highest utility (first on ties), or 0 with utility 0 when that
    utility is negative (abstaining scores 0)."""
    values = [utility(tasks, k, cost) for k in range(1, max_k + 1)]
    best = int(np.argmax(values))
    if values[best] < 0:
        return 0, 0.0
    return best + 1, values[best]


def false_positive_rate_by_task(tasks: Sequence[TaskCounts]) -> float:
    """Mean over tasks with a weak pass of P(fails strong | passes weak)."""
    values = [1.0 - t.strong_given_weak for t in tasks if t.strong_given_weak is not None]
    return float(np.mean(values)) if values else 0.0


def false_positive_rate_by_k(tasks: Sequence[TaskCounts], ks: Sequence[int]) -> list[float]:
    """Per K, the mean of 1 - P(strong | weak) over the tasks whose first weak pass can be the
    K-th sample (c_w >= 1 and K <= n - c_w + 1); NaN where no task can."""
    result = []
    for k in ks:
        values = [
            1.0 - t.strong_given_weak
            for t in tasks
            if t.strong_given_weak is not None and k <= t.n - t.weak_passes + 1
        ]
        result.append(float(np.mean(values)) if values else float("nan"))
    return result


@dataclass(frozen=True)
class PaperTwoTypes:
    """The paper's two-type model parameters (`calculate_model_params`)."""

    r_1: float
    r_2: float
    soundness: float
    p_1: float
    p_2: float


def fit_paper_two_types(tasks: Sequence[TaskCounts]) -> PaperTwoTypes:
    strong = np.array([t.strong_passes / t.n for t in tasks])
    weak = np.array([t.weak_passes / t.n for t in tasks])
    given = [t.strong_given_weak for t in tasks if t.strong_given_weak is not None]
    high, low = strong[strong > 0.5], strong[strong <= 0.5]
    mean_given = float(np.mean(given)) if given else 0.0
    denominator = 1.0 - strong.mean()
    soundness = (
        (1.0 - weak.mean() - strong.mean() + mean_given * weak.mean()) / denominator
        if denominator > 0
        else 1.0
    )
    return PaperTwoTypes(
        r_1=float(high.mean()) if high.size else 0.0,
        r_2=float(low.mean()) if low.size else 0.0,
        soundness=float(soundness),
        p_1=high.size / len(tasks),
        p_2=low.size / len(tasks),
    )


def paper_two_type_utilities(model: PaperTwoTypes, cost: float, max_k: int) -> list[float]:
    """Utility at k = 1..max_k as `get_k_opt` computes it (value 1 correct, -cost wrong)."""
    s, r_1, r_2 = model.soundness, model.r_1, model.r_2
    beta_1, beta_2 = s * (1.0 - r_1), s * (1.0 - r_2)
    fluke_1, fluke_2 = (1.0 - r_1) * (1.0 - s), (1.0 - r_2) * (1.0 - s)
    total, values = 0.0, []
    for k in range(1, max_k + 1):
        w_1, w_2 = beta_1 ** (k - 1) * model.p_1, beta_2 ** (k - 1) * model.p_2
        if w_1 + w_2 <= 0:
            values.append(total)
            continue
        b_1, b_2 = w_1 / (w_1 + w_2), w_2 / (w_1 + w_2)
        value = r_1 * b_1 + r_2 * b_2 - cost * (fluke_1 * b_1 + fluke_2 * b_2)
        total += value * (beta_1 ** (k - 1) * b_1 + beta_2 ** (k - 1) * b_2)
        values.append(total)
    return values


def paper_two_type_optimal_k(model: PaperTwoTypes, cost: float, max_k: int) -> tuple[int, float]:
    """The paper's k* (0: abstain, scoring 0, when the best utility is negative)."""
    values = paper_two_type_utilities(model, cost, max_k)
    best = int(np.argmax(values))
    if values[best] < 0:
        return 0, 0.0
    return best + 1, values[best]
