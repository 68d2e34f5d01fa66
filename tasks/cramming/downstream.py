"""Downstream evaluation of a pretrained cramming encoder: GLUE fine-tuning as cramming does it.

The harness owns everything here, so every method is scored alike: the data, the classification
head, the fine-tuning protocol and the metrics. The protocol is cramming's `eval=GLUE_sane`
(github.com/JonasGeiping/cramming, cramming/config/eval/GLUE_sane.yaml and eval/optim/adam.yaml):
AdamW (lr 4e-5, betas 0.9/0.98, eps 1e-6, no weight decay), batch 16, 5 epochs, 10 % linear
warm-up then cosine decay, dropout on, sequences of at most 128 tokens, and its head: a pooler on
the first token (dense 1024, tanh, dropout 0.1) then a linear classifier. Each task fine-tunes
its own deep copy of the encoder, so tasks cannot leak into each other and the caller's encoder is
never modified.

Scores are reported two ways, each under its own name (`GlueScore`): cramming's, one target
metric a task (MRPC and QQP F1, STS-B Pearson, CoLA Matthews correlation, accuracy elsewhere) and
their mean, as cramming's `GLUE_amean`; and the GLUE leaderboard's, the mean of a task's metrics
(F1 and accuracy, Pearson and Spearman) and the mean of those. MNLI counts twice in both
(matched, mismatched). With repeats, every number is the median over the fine-tunings.

GLUE comes from the hub (`nyu-mll/glue`) or, offline, from a mirror of the original GLUE TSV files
(`data_dir/glue/<TASK>/{train,dev}.tsv`); both are read through `datasets.load_dataset` and
normalised to the columns `text_a`, `text_b` (pair tasks) and `label`, with the hub's label ids.
"""

from __future__ import annotations

import copy
import csv
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

import datasets
import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef
from tokenizers import Tokenizer
from torch import nn

from tasks.base import InputError
from tasks.common.model import Encoder
from tasks.common.precision import autocast, resolve_precision

T = TypeVar("T")
Track = Callable[[Iterable[Any], str, int | None], Iterable[Any]]
"""Progress display: `track(items, description, total)` yields the items (`RunContext.track`)."""

HUB_DATASET = "nyu-mll/glue"
NLI_LABELS = ("entailment", "not_entailment")


def no_progress(items: Iterable[T], description: str, total: int | None = None) -> Iterable[T]:
    """The `track` to use when nobody watches: items pass through unchanged."""
    return items


@dataclass(frozen=True)
class GlueTask:
    """Where one GLUE task's data lives (hub and TSV mirror) and how it is scored.

    MNLI has two scored entries, matched and mismatched: fine-tuned once, scored separately, as
    on the GLUE leaderboard.
    """

    name: str
    directory: str
    tsv_text_columns: tuple[str, ...]
    tsv_label_column: str
    hub_text_columns: tuple[str, ...]
    metrics: tuple[str, ...]
    num_labels: int = 2
    label_names: tuple[str, ...] = ()
    """String labels in the TSV, in the hub's id order; empty when the TSV holds the ids."""
    header: tuple[str, ...] = ()
    """Column names of a headerless TSV (CoLA); empty when the file has a header row."""
    dev_splits: tuple[tuple[str, str, str], ...] = ()
    """Scored entries as (entry name, TSV file, hub split); empty for one `dev.tsv` entry."""

    @property
    def regression(self) -> bool:
        return self.num_labels == 1

    @property
    def entries(self) -> tuple[tuple[str, str, str], ...]:
        return self.dev_splits or ((self.name, "dev.tsv", "validation"),)


GLUE_TASKS: dict[str, GlueTask] = {
    task.name: task
    for task in (
        GlueTask(
            "cola",
            "CoLA",
            ("sentence",),
            "label",
            ("sentence",),
            ("mcc",),
            header=("source", "label", "original_label", "sentence"),
        ),
        GlueTask("sst2", "SST-2", ("sentence",), "label", ("sentence",), ("accuracy",)),
        GlueTask(
            "mrpc",
            "MRPC",
            ("#1 String", "#2 String"),
            "Quality",
            ("sentence1", "sentence2"),
            ("f1", "accuracy"),
        ),
        GlueTask(
            "stsb",
            "STS-B",
            ("sentence1", "sentence2"),
            "score",
            ("sentence1", "sentence2"),
            ("pearson", "spearman"),
            num_labels=1,
        ),
        GlueTask(
            "qqp",
            "QQP",
            ("question1", "question2"),
            "is_duplicate",
            ("question1", "question2"),
            ("f1", "accuracy"),
        ),
        GlueTask(
            "mnli",
            "MNLI",
            ("sentence1", "sentence2"),
            "gold_label",
            ("premise", "hypothesis"),
            ("accuracy",),
            num_labels=3,
            label_names=("entailment", "neutral", "contradiction"),
            dev_splits=(
                ("mnli-m", "dev_matched.tsv", "validation_matched"),
                ("mnli-mm", "dev_mismatched.tsv", "validation_mismatched"),
            ),
        ),
        GlueTask(
            "qnli",
            "QNLI",
            ("question", "sentence"),
            "label",
            ("question", "sentence"),
            ("accuracy",),
            label_names=NLI_LABELS,
        ),
        GlueTask(
            "rte",
            "RTE",
            ("sentence1", "sentence2"),
            "label",
            ("sentence1", "sentence2"),
            ("accuracy",),
            label_names=NLI_LABELS,
        ),
    )
}


def glue_task(name: str) -> GlueTask:
    try:
        return GLUE_TASKS[name]
    except KeyError:
        raise InputError(f"unknown GLUE task {name!r} (known: {', '.join(GLUE_TASKS)})") from None


@dataclass(frozen=True)
class GlueData:
    """One task's splits with columns `text_a`, `text_b` (pair tasks only) and `label`.

    `dev` maps each scored entry ("rte", or "mnli-m" and "mnli-mm") to its split.
    """

    task: GlueTask
    train: datasets.Dataset
    dev: Mapping[str, datasets.Dataset]


def load_glue_task(
    name: str,
    data_dir: Path | None = None,
    max_train_examples: int | None = None,
    max_dev_examples: int | None = None,
    cache_dir: Path | None = None,
) -> GlueData:
    """Load a GLUE task from the hub (`data_dir` None) or from the TSV mirror under `data_dir`.

    The caps keep the first N rows of each split, in file order, so a capped profile always sees
    the same examples. `cache_dir` is where `datasets` keeps its Arrow files (its default if None).
    """
    datasets.disable_progress_bars()  # the harness shows its own progress
    task = glue_task(name)
    for cap in (max_train_examples, max_dev_examples):
        if cap is not None and cap < 1:
            raise InputError(f"GLUE example caps must be at least 1, got {cap}")
    if data_dir is None:
        return _load_hub(task, max_train_examples, max_dev_examples, cache_dir)
    folder = Path(data_dir) / "glue" / task.directory
    if not folder.is_dir():
        raise InputError(f"GLUE task {name!r}: missing directory {folder}")
    train = _load_tsv(task, folder / "train.tsv", max_train_examples, cache_dir)
    dev = {
        entry: _load_tsv(task, folder / file, max_dev_examples, cache_dir)
        for entry, file, _ in task.entries
    }
    return GlueData(task, train, dev)


def _first(dataset: datasets.Dataset, count: int | None) -> datasets.Dataset:
    return dataset if count is None else dataset.select(range(min(count, len(dataset))))


def _load_hub(
    task: GlueTask, max_train: int | None, max_dev: int | None, cache_dir: Path | None
) -> GlueData:
    try:
        splits = datasets.load_dataset(HUB_DATASET, task.name, cache_dir=_str(cache_dir))
    except (OSError, datasets.exceptions.DatasetNotFoundError) as error:
        raise InputError(
            f"GLUE task {task.name!r}: cannot load {HUB_DATASET} from the hub"
            f" ({type(error).__name__}); pass a data directory with a glue/ mirror to work offline"
        ) from error
    names = dict(zip(task.hub_text_columns, ("text_a", "text_b"), strict=False))

    def normalise(split: str, cap: int | None) -> datasets.Dataset:
        dataset = _first(splits[split], cap).select_columns([*task.hub_text_columns, "label"])
        return dataset.rename_columns(names)

    dev = {entry: normalise(split, max_dev) for entry, _, split in task.entries}
    return GlueData(task, normalise("train", max_train), dev)


def _load_tsv(
    task: GlueTask, path: Path, cap: int | None, cache_dir: Path | None
) -> datasets.Dataset:
    """Read one original GLUE TSV. Quirks handled: CoLA has no header row; MRPC starts with a
    UTF-8 BOM; quotes are literal text (QUOTE_NONE), or one stray `"` swallows the lines after
    it; "NA"/"null" are text, not missing values; labels are strings (RTE, QNLI, MNLI), ids or
    similarity scores (STS-B). Rows with an empty label (QQP's GLUE dump has a few truncated
    rows; GLUE's own processors skip them) are dropped.
    """
    if not path.is_file():
        raise InputError(f"GLUE task {task.name!r}: missing file {path}")
    wanted = [*task.tsv_text_columns, task.tsv_label_column]
    with path.open(encoding="utf-8-sig") as file:
        first_line = file.readline().rstrip("\r\n").split("\t")
    if task.header and len(first_line) != len(task.header):
        raise InputError(
            f"{path}: expected {len(task.header)} tab-separated fields"
            f" ({', '.join(task.header)}) without a header, found {len(first_line)}"
        )
    header = task.header or tuple(first_line)
    missing = [column for column in wanted if column not in header]
    if missing:
        raise InputError(f"{path}: missing column {missing[0]!r} (found: {', '.join(header)})")
    try:
        table = datasets.load_dataset(
            "csv",
            data_files=str(path),
            split="train",
            delimiter="\t",
            quoting=csv.QUOTE_NONE,
            header=None if task.header else 0,
            column_names=list(task.header) or None,
            usecols=wanted,
            keep_default_na=False,
            features=datasets.Features({column: datasets.Value("string") for column in wanted}),
            cache_dir=_str(cache_dir),
        )
    except datasets.exceptions.DatasetGenerationError as error:
        cause = str(error.__cause__ or error).strip().splitlines()
        raise InputError(
            f"{path}: unreadable TSV ({cause[-1] if cause else 'no detail'})"
        ) from error
    table = table.filter(
        lambda labels: [bool(label) for label in labels],
        input_columns=task.tsv_label_column,
        batched=True,
    )
    columns = _first(table, cap)[:]  # one Arrow-to-Python conversion, not row by row
    names = dict(zip(("text_a", "text_b"), task.tsv_text_columns, strict=False))
    rows: dict[str, list[Any]] = {name: columns[column] for name, column in names.items()}
    rows["label"] = [_parse_label(task, value, path) for value in columns[task.tsv_label_column]]
    if not rows["label"]:
        raise InputError(f"{path}: no labelled rows")
    label_type = "float32" if task.regression else "int64"
    features = datasets.Features(
        {name: datasets.Value(label_type if name == "label" else "string") for name in rows}
    )
    return datasets.Dataset.from_dict(rows, features=features)


def _parse_label(task: GlueTask, value: str, path: Path) -> float | int:
    """A TSV label as the hub's label: class id (by name or number) or similarity score."""
    if task.label_names:
        if value not in task.label_names:
            raise InputError(f"{path}: label {value!r} is not one of {', '.join(task.label_names)}")
        return task.label_names.index(value)
    try:
        number = float(value)
    except ValueError:
        raise InputError(f"{path}: label {value!r} is not a number") from None
    if task.regression:
        return number
    if number not in range(task.num_labels):
        raise InputError(f"{path}: label {value!r} is not a class id below {task.num_labels}")
    return int(number)


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)


# --- metrics -----------------------------------------------------------------------------------


def glue_metrics(
    task: str, predictions: Sequence[float], labels: Sequence[float]
) -> dict[str, float]:
    """The task's GLUE metrics ×100, `score` (their mean, the leaderboard's task score) and
    `cramming` (the first, cramming's target metric: F1 for MRPC and QQP, Pearson for STS-B).

    Matthews correlation, F1 (positive class 1) and accuracy come from sklearn, Pearson and
    Spearman from scipy. A correlation with a constant side is undefined; it counts as 0, the
    value sklearn gives Matthews correlation in the same case, so one degenerate model cannot
    turn the GLUE average into NaN.
    """
    predicted, truth = np.asarray(predictions), np.asarray(labels)
    constant = np.ptp(predicted) == 0 or np.ptp(truth) == 0
    compute: dict[str, Callable[[], float]] = {
        "mcc": lambda: matthews_corrcoef(truth, predicted),
        "accuracy": lambda: accuracy_score(truth, predicted),
        "f1": lambda: f1_score(truth, predicted, zero_division=0.0),
        "pearson": lambda: 0.0 if constant else pearsonr(predicted, truth).statistic,
        "spearman": lambda: 0.0 if constant else spearmanr(predicted, truth).statistic,
    }
    values = {name: 100.0 * float(compute[name]()) for name in glue_task(task).metrics}
    first = values[glue_task(task).metrics[0]]
    return {**values, "score": float(np.mean(list(values.values()))), "cramming": first}


# --- fine-tuning -------------------------------------------------------------------------------


@dataclass(frozen=True)
class FinetuneProtocol:
    """Cramming's `GLUE_sane` recipe, fixed by the harness so scores compare across methods.

    AdamW without weight decay (GLUE_sane's optimizer; the decay-exempt groups are kept for
    profiles that set one); the learning rate rises linearly over the first `warmup_fraction`
    of the steps, then follows a cosine to zero. Cramming fine-tunes for 5 epochs, the cap
    allowed here; on a GPU the forward pass runs in bfloat16 autocast.
    """

    learning_rate: float = 4e-5
    batch_size: int = 16
    epochs: int = 5
    warmup_fraction: float = 0.1
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-6
    max_length: int = 128
    head_dim: int = 1024
    head_dropout: float = 0.1

    def __post_init__(self) -> None:
        if not 1 <= self.epochs <= 5:
            raise InputError(f"fine-tuning epochs must be between 1 and 5, got {self.epochs}")
        if self.learning_rate <= 0 or self.batch_size < 1 or self.max_length < 4:
            raise InputError(
                "fine-tuning needs learning_rate > 0, batch_size >= 1, max_length >= 4"
            )
        if not 0 <= self.warmup_fraction < 1 or not 0 <= self.head_dropout < 1:
            raise InputError("warmup_fraction and head_dropout must be in [0, 1)")


class Classifier(nn.Module):
    """Cramming's sequence-classification head on an encoder: the first token's hidden state
    through the pooler (dense to `head_dim`, tanh, dropout), then a linear classifier."""

    def __init__(self, encoder: Encoder, num_labels: int, protocol: FinetuneProtocol) -> None:
        super().__init__()
        self.encoder = encoder
        self.pooler = nn.Sequential(
            nn.Linear(encoder.config.hidden_size, protocol.head_dim),
            nn.Tanh(),
            nn.Dropout(protocol.head_dropout),
        )
        self.head = nn.Linear(protocol.head_dim, num_labels)
        for linear in (self.pooler[0], self.head):  # cramming's (and BERT's) initialisation
            nn.init.normal_(linear.weight, std=0.02)
            nn.init.zeros_(linear.bias)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.pooler(self.encoder(input_ids, attention_mask)[:, 0]))


def encode(
    tokenizer: Tokenizer,
    text_a: Sequence[str],
    text_b: Sequence[str] | None = None,
    max_length: int = 128,
) -> list[list[int]]:
    """`[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]` token ids, at most `max_length` long.

    The pretraining tokenizer has no post-processor, so the layout is built here. Pairs are
    truncated longest first (one token at a time from the longer text, the second on a tie),
    BERT's rule, so a long premise does not crowd out a short hypothesis.
    """
    cls, sep = _token_id(tokenizer, "[CLS]"), _token_id(tokenizer, "[SEP]")
    first = [e.ids for e in tokenizer.encode_batch(list(text_a), add_special_tokens=False)]
    if text_b is None:
        return [[cls, *a[: max_length - 2], sep] for a in first]
    second = [e.ids for e in tokenizer.encode_batch(list(text_b), add_special_tokens=False)]
    rows = []
    for a, b in zip(first, second, strict=True):
        keep_a, keep_b = len(a), len(b)
        while keep_a + keep_b > max_length - 3:
            if keep_a > keep_b:
                keep_a -= 1
            else:
                keep_b -= 1
        rows.append([cls, *a[:keep_a], sep, *b[:keep_b], sep])
    return rows


def _token_id(tokenizer: Tokenizer, token: str) -> int:
    token_id = tokenizer.token_to_id(token)
    if token_id is None:
        raise ValueError(f"the tokenizer has no {token} token")
    return token_id


def _pad(rows: Sequence[list[int]], pad_id: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Pad a batch to its longest row (not to max_length: short GLUE sentences train faster)."""
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
    return ids.to(device), mask.to(device)


def warmup_cosine(total_steps: int, warmup_fraction: float) -> Callable[[int], float]:
    """Learning-rate factor for step s (0-based): linear to 1 over the warmup, cosine after.

    The first step already has a non-zero rate, so every step of a short run teaches something.
    """
    warmup = max(1, math.ceil(warmup_fraction * total_steps)) if warmup_fraction > 0 else 0

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


@dataclass(frozen=True)
class _Labelled:
    """Encoded examples of one split: token ids, labels (class ids or scores), the padding id."""

    ids: list[list[int]]
    labels: torch.Tensor
    pad_id: int


def _labelled(
    tokenizer: Tokenizer,
    columns: Mapping[str, list[Any]],
    protocol: FinetuneProtocol,
    regression: bool,
) -> _Labelled:
    """Encode a split given as columns (`Dataset[:]`): `text_a`, optional `text_b`, `label`."""
    ids = encode(tokenizer, columns["text_a"], columns.get("text_b"), protocol.max_length)
    dtype = torch.float32 if regression else torch.long
    labels = torch.tensor(columns["label"], dtype=dtype)
    return _Labelled(ids, labels, _token_id(tokenizer, "[PAD]"))


def _finetune(
    encoder: Encoder,
    train: _Labelled,
    num_labels: int,
    protocol: FinetuneProtocol,
    device: torch.device,
    seed: int,
    track: Track,
    description: str,
    max_steps: int | None = None,
) -> Classifier:
    """Fine-tune a deep copy of `encoder` with a fresh head; the caller's encoder is untouched.

    The head's initialisation, dropout masks and batch order all follow `seed`, so the same seed
    gives the same model on the same machine (the caller's torch RNG state is restored after).
    """
    if not train.ids:
        raise InputError(f"{description}: no training examples")
    with torch.random.fork_rng(devices=_cuda_indices(device)):
        torch.manual_seed(seed)
        model = Classifier(copy.deepcopy(encoder), num_labels, protocol)
        model.to(device).train()
        order = torch.Generator().manual_seed(seed)
        total = math.ceil(len(train.ids) / protocol.batch_size) * protocol.epochs
        if max_steps is not None:
            total = min(total, max_steps)
        matrices = [p for p in model.parameters() if p.ndim >= 2]
        vectors = [p for p in model.parameters() if p.ndim < 2]
        optimizer = torch.optim.AdamW(
            [
                {"params": matrices, "weight_decay": protocol.weight_decay},
                {"params": vectors, "weight_decay": 0.0},
            ],
            lr=protocol.learning_rate,
            betas=protocol.betas,
            eps=protocol.eps,
        )
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, warmup_cosine(total, protocol.warmup_fraction)
        )

        def batches() -> Iterator[torch.Tensor]:
            for _ in range(protocol.epochs):
                shuffled = torch.randperm(len(train.ids), generator=order)
                yield from shuffled.split(protocol.batch_size)

        for indices in track(islice(batches(), total), description, total):
            ids, mask = _pad([train.ids[i] for i in indices], train.pad_id, device)
            with autocast(device, resolve_precision("auto", device)):
                output = model(ids, mask).float()
            labels = train.labels[indices].to(device)
            if num_labels == 1:
                loss = F.mse_loss(output.squeeze(-1), labels)
            else:
                loss = F.cross_entropy(output, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    return model.eval()


@torch.no_grad()
def _predict(
    model: Classifier, data: _Labelled, batch_size: int, device: torch.device
) -> np.ndarray:
    """Class ids (argmax) or, for a one-output head, the regression values."""
    model.eval()
    outputs = []
    for start in range(0, len(data.ids), batch_size):
        batch, mask = _pad(data.ids[start : start + batch_size], data.pad_id, device)
        with autocast(device, resolve_precision("auto", device)):
            outputs.append(model(batch, mask).float().cpu())
    logits = torch.cat(outputs)
    return (logits.squeeze(-1) if logits.shape[-1] == 1 else logits.argmax(-1)).numpy()


def _cuda_indices(device: torch.device) -> list[int]:
    """The CUDA device whose RNG `fork_rng` must save and restore (none on a CPU)."""
    if device.type != "cuda":
        return []
    return [torch.cuda.current_device() if device.index is None else device.index]


# --- entry points ------------------------------------------------------------------------------


@dataclass(frozen=True)
class GlueScore:
    """GLUE dev-set results of one encoder, all ×100.

    `tasks` maps each entry ("cola", ..., "mnli-m", "mnli-mm") to its metrics, `score` (their
    mean, the leaderboard's rule for tasks with two metrics) and `cramming` (cramming's target
    metric). `average` is the leaderboard's unweighted mean of the entries' scores,
    `cramming_average` cramming's mean of the target metrics; MNLI matched and mismatched count
    as two entries in both. With several fine-tunings every value is the median over them, and
    `repeats` keeps each fine-tuning's values (entry -> metric -> one value a fine-tuning).
    `examples` gives each entry's (train, dev) sizes after the caps.
    """

    tasks: Mapping[str, Mapping[str, float]]
    average: float
    cramming_average: float
    max_train_examples: int | None
    max_dev_examples: int | None
    examples: Mapping[str, tuple[int, int]]
    repeats: Mapping[str, Mapping[str, list[float]]]


def score_glue(
    encoder: Encoder,
    tokenizer: Tokenizer,
    tasks: Sequence[str],
    data_dir: Path | None = None,
    max_train_examples: int | None = None,
    max_dev_examples: int | None = None,
    protocol: FinetuneProtocol = FinetuneProtocol(),
    device: str = "cpu",
    seed: int = 0,
    track: Track = no_progress,
    cache_dir: Path | None = None,
    repeats: int = 1,
) -> GlueScore:
    """Fine-tune a copy of `encoder` on each task `repeats` times and score it on the dev sets.

    All data is loaded before any fine-tuning, so a missing file fails at once. Fine-tuning r
    (0-based) of every task uses seed `seed + 1000·r`, so a task's score does not depend on
    which others ran. Each value is the median over the fine-tunings (cramming reports the
    median of 5), and the averages are taken over the medians.
    """
    if not tasks:
        raise InputError("score_glue needs at least one GLUE task")
    if repeats < 1:
        raise InputError(f"fine-tuning repeats must be at least 1, got {repeats}")
    loaded = [
        load_glue_task(name, data_dir, max_train_examples, max_dev_examples, cache_dir)
        for name in dict.fromkeys(tasks)
    ]
    target = torch.device(device)
    runs: dict[str, dict[str, list[float]]] = {}
    examples: dict[str, tuple[int, int]] = {}
    for data in loaded:
        task = data.task
        train = _labelled(tokenizer, data.train[:], protocol, task.regression)
        devs = {
            entry: _labelled(tokenizer, split[:], protocol, task.regression)
            for entry, split in data.dev.items()
        }
        for repeat in range(repeats):
            label = task.name if repeats == 1 else f"{task.name} ({repeat + 1}/{repeats})"
            model = _finetune(
                encoder, train, task.num_labels, protocol, target, seed + 1000 * repeat, track,
                label,
            )  # fmt: skip
            for entry, dev in devs.items():
                predictions = _predict(model, dev, protocol.batch_size, target)
                metrics = glue_metrics(task.name, predictions, dev.labels.numpy())
                for name, value in metrics.items():
                    runs.setdefault(entry, {}).setdefault(name, []).append(value)
                examples[entry] = (len(train.ids), len(dev.ids))
            del model  # free it before the next copy is made
    results = {
        entry: {name: float(np.median(values)) for name, values in metrics.items()}
        for entry, metrics in runs.items()
    }
    average = float(np.mean([metrics["score"] for metrics in results.values()]))
    cramming = float(np.mean([metrics["cramming"] for metrics in results.values()]))
    return GlueScore(
        results, average, cramming, max_train_examples, max_dev_examples, examples, runs
    )
