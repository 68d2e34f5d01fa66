"""The frozen evaluation data: held-out windows, the calibration split, prompts and the
multiple-choice items, all cut from the profile's corpus with the model's own tokenizer.

- Held-out windows, `protocol = "llama.cpp"` (standard, full): llama.cpp's `perplexity` on
  `wiki.test.raw`. The corpus's raw *test* text (`DATA_DIR/<corpus>/test.txt` read as bytes, or
  the hub's test split with its lines joined back as they were in the file) is tokenized in one
  piece, with BOS first when the tokenizer adds one (llama.cpp's `add_bos` of the vocabulary),
  cut into non-overlapping windows of `context_len` (n_ctx) tokens, and in every window the first
  token is replaced by BOS when the tokenizer adds one, as llama.cpp does for each chunk.
  `eval_windows` is llama.cpp's `--chunks` (0: every whole window of the text).
- Held-out windows, `protocol = "articles"` (smoke, and any corpus without a test split): the
  corpus's validation split as one token stream (documents joined by the tokenizer's
  end-of-sequence token when it has one), cut into non-overlapping windows of `context_len`
  tokens, no BOS; the first `eval_windows` are used (0: every whole window).
- Calibration: the same cut of the *training* split, so it never overlaps the held-out text; it is
  all a method may look at.
- Prompts for generation: the first `prompt_len` tokens of held-out windows spread evenly over
  them (equal lengths, so a batch needs no padding).
- Multiple choice ("continuation choice", the smoke profile's synthetic downstream task, built only
  when the profile lists `synthetic-choice`): held-out documents are cut into consecutive spans of
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


def bos_token(tokenizer) -> int | None:
    """The BOS id the tokenizer puts before a text by itself (Llama's do, GPT-2's do not)."""
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    special = tokenizer("a", add_special_tokens=True)["input_ids"]
    bos = tokenizer.bos_token_id
    added = len(special) > len(plain) and special[0] == bos
    return bos if bos is not None and added else None


def llama_cpp_windows(tokenizer, text: str, context_len: int, count: int) -> torch.Tensor:
    """llama.cpp's perplexity chunks of `text` (see the module docstring); `count` 0: all."""
    bos = bos_token(tokenizer)
    ids = tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
    if bos is not None:
        ids = [bos, *ids]
    available = len(ids) // context_len
    if available < max(count, 2):  # llama.cpp asks for at least 2 * n_ctx tokens
        raise ValueError(
            f"the test text gives {len(ids)} tokens, fewer than {max(count, 2)} windows of"
            f" {context_len}"
        )
    windows = count or available
    tokens = torch.tensor(ids[: windows * context_len], dtype=torch.long)
    tokens = tokens.view(windows, context_len).clone()
    if bos is not None:
        tokens[:, 0] = bos
    return tokens


def token_windows(tokenizer, documents: list[str], context_len: int, count: int) -> torch.Tensor:
    """The first `count` windows (0: all) of `context_len` tokens of the documents' stream."""
    needed = context_len * count if count else None
    stream: list[int] = []
    separator = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    for start in range(0, len(documents), 64):
        batch = documents[start : start + 64]
        for ids in tokenizer(batch, add_special_tokens=False)["input_ids"]:
            stream.extend(ids)
            stream.extend(separator)
        if needed is not None and len(stream) >= needed:
            break
    count = count or len(stream) // context_len
    if count == 0 or len(stream) < context_len * count:
        raise ValueError(
            f"the text gives {len(stream)} tokens, fewer than {count or 1} windows of {context_len}"
        )
    return torch.tensor(stream[: context_len * count], dtype=torch.long).view(count, context_len)


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


def prepare_data(
    tokenizer, train: list[str], validation: list[str], test_text: str | None, config
) -> EvalData:
    """The run's data; `test_text` is the raw test text the llama.cpp protocol scores."""
    if config.protocol == "llama.cpp":
        if test_text is None:
            raise ValueError("the llama.cpp protocol needs the corpus's raw test text")
        heldout = llama_cpp_windows(tokenizer, test_text, config.context_len, config.eval_windows)
    else:
        heldout = token_windows(tokenizer, validation, config.context_len, config.eval_windows)
    if max(config.prompts, config.sensitivity_windows) > heldout.shape[0]:
        raise ValueError(
            f"prompts and sensitivity_windows must not exceed the {heldout.shape[0]} held-out"
            " windows"
        )
    calibration = token_windows(tokenizer, train, config.context_len, config.calibration_windows)
    rows = torch.linspace(0, heldout.shape[0] - 1, config.prompts).round().long()
    prompts = heldout[rows, : config.prompt_len].clone()
    items = (
        choice_items(
            validation,
            config.choice_items,
            config.choice_count,
            config.choice_context_words,
            config.choice_continuation_words,
        )
        if "synthetic-choice" in config.downstream
        else []
    )
    return EvalData(heldout, calibration, prompts, items)


def raw_test_text(corpus: str, data_dir) -> tuple[str, str]:
    """The corpus's test split as llama.cpp reads `wiki.test.raw`, and where it came from."""
    from tasks.base import InputError
    from tasks.common.corpus import HUB_CORPORA

    if corpus not in HUB_CORPORA:
        raise InputError(f"the llama.cpp protocol needs a WikiText corpus, not {corpus!r}")
    if data_dir is not None:
        path = data_dir / corpus / "test.txt"
        if not path.is_file():
            raise InputError(f"corpus {corpus!r}: missing {path} in the data mirror")
        return path.read_bytes().decode("utf-8"), f"mirror {path}"
    import datasets

    name, config = HUB_CORPORA[corpus]
    try:
        lines = datasets.load_dataset(name, config, split="test")["text"]
    except Exception as exc:  # offline, or the hub is unreachable
        raise InputError(
            f"corpus {corpus!r}: could not load the test split of {name}/{config} from the hub"
            f" ({type(exc).__name__}); on an offline machine pass --data-dir with a mirror"
        ) from exc
    return "".join(lines), f"hub {name}/{config} test split"
