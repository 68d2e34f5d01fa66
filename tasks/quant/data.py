"""The frozen evaluation data: held-out windows, the calibration split, prompts and the
multiple-choice items, all cut from the profile's corpus with the model's own tokenizer.

- Held-out windows: the corpus's validation split as one token stream (documents joined by the
  tokenizer's end-of-sequence token when it has one), cut into non-overlapping windows of
  `context_len` tokens; the first `eval_windows` are used.
- Calibration: the same cut of the *training* split, so it never overlaps the held-out text; it is
  all a method may look at.
- Prompts for generation: the first `prompt_len` tokens of held-out windows spread evenly over
  them (equal lengths, so a batch needs no padding).
- Multiple choice ("continuation choice"): held-out documents are cut into consecutive spans of
  `choice_context_words + choice_continuation_words` words; the context is a span's first words
  and the true answer the rest; the distractors are the true continuations of the following items,
  and the answer's position rotates so that it is not always the first choice.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ChoiceItem:
    context: str
    choices: list[str]
    label: int


@dataclass(frozen=True)
class EvalData:
    heldout: torch.Tensor
    calibration: torch.Tensor
    prompts: torch.Tensor
    choice_items: list[ChoiceItem]

    @property
    def sha256(self) -> str:
        digest = hashlib.sha256()
        for tensor in (self.heldout, self.calibration, self.prompts):
            digest.update(tensor.numpy().tobytes())
        digest.update(json.dumps([vars(item) for item in self.choice_items]).encode())
        return digest.hexdigest()


def token_windows(tokenizer, documents: list[str], context_len: int, count: int) -> torch.Tensor:
    """The first `count` windows of `context_len` tokens of the documents' token stream."""
    needed = context_len * count
    stream: list[int] = []
    separator = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    for start in range(0, len(documents), 64):
        batch = documents[start : start + 64]
        for ids in tokenizer(batch, add_special_tokens=False)["input_ids"]:
            stream.extend(ids)
            stream.extend(separator)
        if len(stream) >= needed:
            break
    if len(stream) < needed:
        raise ValueError(
            f"the text gives {len(stream)} tokens, fewer than {count} windows of {context_len}"
        )
    return torch.tensor(stream[:needed], dtype=torch.long).view(count, context_len)


def choice_items(
    documents: list[str], count: int, choices: int, context_words: int, continuation_words: int
) -> list[ChoiceItem]:
    """Pick-the-true-continuation items from held-out documents (see the module docstring)."""
    pieces: list[tuple[str, str]] = []
    span = context_words + continuation_words
    for document in documents:
        words = document.split()
        for start in range(0, len(words) - span + 1, span):
            context = " ".join(words[start : start + context_words])
            pieces.append((context, " ".join(words[start + context_words : start + span])))
        if len(pieces) >= count:
            break
    pieces = pieces[:count]
    if len(pieces) < max(choices, 2):
        raise ValueError(f"only {len(pieces)} held-out documents are long enough for choice items")
    items = []
    for index, (context, answer) in enumerate(pieces):
        distractors = [pieces[(index + k) % len(pieces)][1] for k in range(1, choices)]
        label = index % choices
        items.append(
            ChoiceItem(context, [*distractors[:label], answer, *distractors[label:]], label)
        )
    return items


def prepare_data(tokenizer, train: list[str], validation: list[str], config) -> EvalData:
    heldout = token_windows(tokenizer, validation, config.context_len, config.eval_windows)
    calibration = token_windows(tokenizer, train, config.context_len, config.calibration_windows)
    rows = torch.linspace(0, config.eval_windows - 1, config.prompts).round().long()
    prompts = heldout[rows, : config.prompt_len].clone()
    items = choice_items(
        validation,
        config.choice_items,
        config.choice_count,
        config.choice_context_words,
        config.choice_continuation_words,
    )
    return EvalData(heldout, calibration, prompts, items)
