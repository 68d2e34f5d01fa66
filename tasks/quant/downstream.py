"""Downstream accuracy and flips through lm-evaluation-harness, on the in-memory model.

The profile's `downstream` list names the tasks:
- `hellaswag`, `arc_easy`, `piqa`, `winogrande` (standard, full): lm-eval's own task configs
  (prompts, choices, metrics exactly as lm-eval ships them), zero-shot, the first `choice_items`
  documents of each task's evaluation split (lm-eval's `limit`; 0 takes them all). Their data comes
  from the hub, or offline from a mirror: `DATA_DIR/<dataset_path>/`, the dataset repository's
  files as `huggingface-cli download --repo-type dataset <dataset_path> --local-dir ...` lays them
  out (parquet files, and the README whose `configs` name the subsets, e.g. ARC-Easy,
  winogrande_xl). The task runs with `dataset_path` pointed at that directory; nothing else of
  lm-eval's config changes.
- `synthetic-choice` (smoke only): a 4-way "pick the true continuation" task built from held-out
  text (see `tasks.quant.data`). It is an offline check that the plumbing works, *not a published
  benchmark*; at smoke scale it sits near chance, and every place that shows it says so.

Each task is written as a small YAML into a scratch directory (`include:` of lm-eval's file with
the mirror path as the only override, or the synthetic items as JSONL) and found through
`TaskManager(include_path=...)`, so lm-eval never indexes its thousands of other tasks. lm-eval
scores each choice by its log-likelihood after the context and reports `acc` (and `acc_norm`
where the task defines it). Per document the predicted choice and lm-eval's document hash are
kept: the run counts *flips* against the reference, items whose correctness changed (Dutta et al.,
"Accuracy is Not All You Need"), and the reference's answers are cached under the hashes of the
documents actually scored.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tasks.base import InputError

if TYPE_CHECKING:
    from tasks.quant.data import ChoiceItem

SYNTHETIC = "synthetic-choice"
LM_EVAL_TASKS = {"hellaswag": "hellaswag", "arc_easy": "arc", "piqa": "piqa",
                 "winogrande": "winogrande"}  # fmt: skip
"""The real tasks a profile may list, each with its folder under lm_eval/tasks."""
DOWNSTREAM_TASKS = (SYNTHETIC, *LM_EVAL_TASKS)
SYNTHETIC_LABEL = "synthetic continuation choice: an offline smoke check, not a benchmark"

_SYNTHETIC_YAML = """task: {task}
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
    """Percent of items answered correctly (lm-eval's `acc`)."""
    predictions: list[int]
    correct: list[bool]
    doc_hashes: list[str] = field(default_factory=list)
    """lm-eval's hash of each scored document, in document order."""
    accuracy_norm: float | None = None
    """lm-eval's `acc_norm` in percent, where the task defines it."""


def metric_key(task: str) -> str:
    """The task's part of its metric names (`downstream_<key>_accuracy`)."""
    return task.replace("-", "_")


def _lm_eval_file(task: str) -> Path:
    """lm-eval's own YAML for `task`, read from its folder without importing lm-eval."""
    import importlib.util

    spec = importlib.util.find_spec("lm_eval")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("the downstream tasks need lm-eval (pip install lm-eval)")
    folder = Path(next(iter(spec.submodule_search_locations))) / "tasks" / LM_EVAL_TASKS[task]
    for path in sorted(folder.glob("*.yaml")):
        if _read_yaml(path).get("task") == task:
            return path
    raise InputError(f"the installed lm-eval has no task {task!r} in {folder}")


def _read_yaml(path: Path) -> dict:
    """A task YAML's plain keys; lm-eval's `!function` tags read as None."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    data = yaml.load(path.read_text(), Loader=Loader)
    return data if isinstance(data, dict) else {}


def dataset_location(task: str, data_dir: Path | None) -> tuple[str, str | None]:
    """Where `task`'s data is loaded from (a hub id, or its directory in the mirror), and its
    subset name; a mirror directory without data files is an InputError."""
    config = _read_yaml(_lm_eval_file(task))
    path, name = str(config["dataset_path"]), config.get("dataset_name")
    if data_dir is None:
        return path, name
    directory = (data_dir / path).resolve()
    if not directory.is_dir():
        raise InputError(
            f"lm-eval task {task}: the data mirror lacks {directory} (the files of hub dataset"
            f" {path})"
        )
    if not any(directory.rglob("*.parquet")) and not any(directory.rglob("*.arrow")):
        raise InputError(f"lm-eval task {task}: {directory} holds no parquet or arrow files")
    return str(directory), name


def check_reachable(task: str, data_dir: Path | None) -> None:
    """Fail before a run when `task`'s data is missing from the mirror, or, without a mirror,
    cannot be reached on the hub (or in its local cache)."""
    path, name = dataset_location(task, data_dir)
    if data_dir is not None:
        return  # loading the mirror's files is the run's first step; a bad file fails it there
    import datasets

    try:
        datasets.load_dataset_builder(path, name)
    except Exception as exc:
        first = (str(exc).splitlines() or [""])[0][:200]
        raise InputError(
            f"lm-eval task {task}: cannot reach {path} on the hub ({type(exc).__name__}: {first});"
            " on an offline machine pass --data-dir with a mirror"
        ) from exc


def write_tasks(
    tasks: list[str], items: list[ChoiceItem], data_dir: Path | None, directory: Path
) -> Path:
    """One YAML per task in `directory` (and the synthetic items' JSONL); returns `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    for task in tasks:
        if task == SYNTHETIC:
            data = directory / "synthetic-items.jsonl"
            data.write_text("".join(json.dumps(vars(item)) + "\n" for item in items))
            text = _SYNTHETIC_YAML.format(task=task, data=json.dumps(str(data)))
        else:
            path, _name = dataset_location(task, data_dir)
            text = (f"include: {json.dumps(str(_lm_eval_file(task)))}\ntask: {task}\n"
                    f"dataset_path: {json.dumps(path)}\n")  # fmt: skip
        (directory / f"{task}.yaml").write_text(text)
    return directory


def evaluate(
    model, tokenizer, task_dir: Path, tasks: list[str], batch_size: int, limit: int
) -> dict[str, ChoiceResult]:
    """Score `tasks` (written by `write_tasks` into `task_dir`) with lm-eval on `model`; real
    tasks take their first `limit` documents (0: all)."""
    import datasets
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    for name in ("lm-eval", "lm_eval", "datasets"):
        logging.getLogger(name).setLevel(logging.ERROR)
    datasets.disable_progress_bars()
    wrapped = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)
    manager = TaskManager(include_path=str(task_dir), include_defaults=False)
    results: dict[str, ChoiceResult] = {}
    for task in tasks:  # one call a task: `limit` must not cut the synthetic items
        output = lm_eval.simple_evaluate(
            model=wrapped,
            tasks=[task],
            task_manager=manager,
            num_fewshot=0,
            limit=None if task == SYNTHETIC or not limit else limit,
            log_samples=True,
            verbosity="ERROR",
        )
        results[task] = _choice_result(output, task)
    return results


def _choice_result(output: dict, task: str) -> ChoiceResult:
    samples = sorted(output["samples"][task], key=lambda sample: sample["doc_id"])
    predictions, correct = [], []
    for sample in samples:
        scores = [float(response[0]) for response in sample["filtered_resps"]]
        predictions.append(max(range(len(scores)), key=scores.__getitem__))
        correct.append(bool(sample["acc"]))
    norm = output["results"][task].get("acc_norm,none")
    return ChoiceResult(
        accuracy=100.0 * sum(correct) / len(correct),
        predictions=predictions,
        correct=correct,
        doc_hashes=[sample["doc_hash"] for sample in samples],
        accuracy_norm=None if norm is None else 100.0 * float(norm),
    )


def downstream_report(scalars: dict[str, float]) -> list[str]:
    """The downstream tasks' accuracies and flips as `show` and the site print them, the
    synthetic one labelled as what it is."""
    lines = []
    for task in DOWNSTREAM_TASKS:
        key = f"downstream_{metric_key(task)}"
        if f"{key}_accuracy" not in scalars:
            continue
        text = (f"{task:<16} acc {scalars[f'{key}_accuracy']:7.3f}%"
                f"  reference {scalars[f'{key}_accuracy_reference']:7.3f}%"
                f"  flips {scalars[f'{key}_flip_rate']:7.3f}%")  # fmt: skip
        if f"{key}_accuracy_norm" in scalars:
            text += f"  acc_norm {scalars[f'{key}_accuracy_norm']:7.3f}%"
        lines.append(text + (f"  ({SYNTHETIC_LABEL})" if task == SYNTHETIC else ""))
    if not lines:
        return []
    return [
        "",
        "====== Downstream (lm-eval, zero-shot; flips against the reference) ======",
        *lines,
    ]


def flip_rate(reference: list[bool], quantized: list[bool]) -> float:
    """Percent of items whose correctness differs between the two models."""
    if len(reference) != len(quantized) or not reference:
        raise ValueError("flip rate needs the same, non-empty item list for both models")
    return 100.0 * sum(r != q for r, q in zip(reference, quantized, strict=True)) / len(reference)
