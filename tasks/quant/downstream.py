"""Downstream accuracy through lm-evaluation-harness, offline.

The task writes its multiple-choice items (see `tasks.quant.data`) to a local JSONL file and a
task YAML beside it, and runs `lm_eval.simple_evaluate` with an `HFLM` wrapped around the
in-memory model, finding the task through `TaskManager(include_path=...)`. lm-eval scores each
choice by its log-likelihood after the context and reports `acc` (the highest-scoring choice is
the true one). Per item the predicted choice is kept, so a run can count *flips* against the
reference: items whose correctness changed (Dutta et al., "Accuracy is Not All You Need").
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from tasks.quant.data import ChoiceItem

TASK_NAME = "budgetbench_continuation_choice"

_YAML = """task: {task}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: context
doc_to_choice: choices
doc_to_target: label
target_delimiter: " "
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
"""


@dataclass(frozen=True)
class ChoiceResult:
    accuracy: float
    """Percent of items answered correctly."""
    predictions: list[int]
    correct: list[bool]


def write_task(items: list[ChoiceItem], directory: Path) -> Path:
    """The JSONL items and the task YAML that reads them; returns the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    data = directory / "items.jsonl"
    data.write_text("".join(json.dumps(vars(item)) + "\n" for item in items))
    (directory / f"{TASK_NAME}.yaml").write_text(
        _YAML.format(task=TASK_NAME, data=json.dumps(str(data)))
    )
    return directory


def evaluate_choices(model, tokenizer, task_dir: Path, batch_size: int) -> ChoiceResult:
    """Score the items in `task_dir` with lm-eval on the in-memory `model`."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    for name in ("lm-eval", "lm_eval", "datasets"):
        logging.getLogger(name).setLevel(logging.ERROR)
    wrapped = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)
    results = lm_eval.simple_evaluate(
        model=wrapped,
        tasks=[TASK_NAME],
        task_manager=TaskManager(include_path=str(task_dir), include_defaults=False),
        log_samples=True,
        verbosity="ERROR",
    )
    samples = sorted(results["samples"][TASK_NAME], key=lambda sample: sample["doc_id"])
    predictions, correct = [], []
    for sample in samples:
        scores = [float(response[0]) for response in sample["filtered_resps"]]
        predictions.append(max(range(len(scores)), key=scores.__getitem__))
        correct.append(bool(sample["acc"]))
    accuracy = 100.0 * sum(correct) / len(correct)
    return ChoiceResult(accuracy, predictions, correct)


def flip_rate(reference: list[bool], quantized: list[bool]) -> float:
    """Percent of items whose correctness differs between the two models."""
    if len(reference) != len(quantized) or not reference:
        raise ValueError("flip rate needs the same, non-empty item list for both models")
    return 100.0 * sum(r != q for r, q in zip(reference, quantized, strict=True)) / len(reference)
