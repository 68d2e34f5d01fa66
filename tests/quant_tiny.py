"""Tiny models, tokenizer and data mirror for the `quant` tests, and one run through the real
runner and store in this process (imports are paid once)."""

from __future__ import annotations

from pathlib import Path

import torch

from harness.run.machine import collect_fingerprint
from harness.run.runner import execute, prepare, save_machine
from harness.store import open_store
from harness.store.records import RunRecord

WORDS = [f"w{i}" for i in range(60)]
SPECIALS = ["[UNK]", "[PAD]", "[SEP]", "[BOS]"]

# Settings that make a run over a tiny model take seconds.
TINY = ("--set", "context_len=16", "--set", "eval_windows=4", "--set", "calibration_windows=1",
        "--set", "batch_size=4", "--set", "choice_items=8", "--set", "choice_context_words=6",
        "--set", "choice_continuation_words=3", "--set", "prompts=2", "--set", "prompt_len=4",
        "--set", "temperatures=[0.0, 0.8]", "--set", "top_ks=[0]", "--set", "max_new_tokens=[4]",
        "--set", "generation_seeds=1", "--set", "sensitivity_windows=2",
        "--set", "speed_prompt_len=8", "--set", "speed_decode_tokens=2",
        "--set", "speed_repeats=1")  # fmt: skip


def tiny_tokenizer(add_bos: bool = False):
    """A word-level tokenizer over WORDS; with `add_bos` it puts [BOS] before every text, as
    Llama's tokenizers do."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate([*SPECIALS, *WORDS])}
    words = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    if add_bos:
        words.post_processor = processors.TemplateProcessing(
            single="[BOS] $A", special_tokens=[("[BOS]", vocab["[BOS]"])]
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=words, unk_token="[UNK]", pad_token="[PAD]", eos_token="[SEP]",
        bos_token="[BOS]",
    )  # fmt: skip


def qwen_tokenizer():
    """A byte-level BPE trained with `tokenizers` on the WORDS text the way Qwen2's is built (its
    own pre-tokenization regex, then bytes), so that transformers' `Qwen2Tokenizer`, which
    rebuilds a Qwen2 checkpoint's tokenizer from its vocabulary and merges, reads it back as it
    was trained. (A word-level vocabulary saved beside a Qwen2 config loads as a Qwen2Tokenizer
    that finds no merges and encodes every text to no ids at all.)"""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])  # fmt: skip
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320, special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )  # fmt: skip
    text = [" ".join(WORDS[(i * 7 + j) % 60] for j in range(40)) + " =" for i in range(60)]
    bpe.train_from_iterator(text, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="<|endoftext|>", pad_token="<|endoftext|>"
    )


def tiny_model(vocab_size: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=vocab_size, hidden_size=64, intermediate_size=128,
                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                         pad_token_id=1, eos_token_id=2, bos_token_id=3)  # fmt: skip
    return LlamaForCausalLM(config).eval()


def write_mirror(root: Path) -> Path:
    """A text 'corpus' the tiny tokenizer knows, laid out as a wikitext-2-raw mirror."""
    directory = root / "wikitext-2-raw"
    directory.mkdir(parents=True)
    article = " = {title} = \n {text} \n"
    text = lambda i: " ".join(WORDS[(i * 11 + j * 3) % 60] for j in range(40))  # noqa: E731
    for split, offset, count in (("train", 0, 10), ("valid", 50, 12), ("test", 25, 12)):
        (directory / f"{split}.txt").write_text(
            "".join(article.format(title=f"w{offset % 60}", text=text(i + offset))
                    for i in range(count))
        )  # fmt: skip
    return root


def _words(seed: int, count: int) -> str:
    return " ".join(WORDS[(seed * 7 + k * 13) % 60] for k in range(count))


def lm_eval_rows(task: str, count: int) -> list[dict]:
    """`count` documents in the hub dataset's own schema for lm-eval's `task`."""
    rows = []
    for i in range(count):
        if task == "hellaswag":  # Rowan/hellaswag
            rows.append({"ind": i, "activity_label": _words(i, 1), "ctx_a": _words(i, 5),
                         "ctx_b": _words(i + 1, 2), "ctx": _words(i, 7),
                         "endings": [_words(i + k, 3) for k in range(4)],
                         "source_id": f"tiny~{i}", "split": "val", "split_type": "indomain",
                         "label": str(i % 4)})  # fmt: skip
        elif task == "arc_easy":  # allenai/ai2_arc, subset ARC-Easy
            rows.append({"id": f"tiny-{i}", "question": _words(i, 6),
                         "choices": {"text": [_words(i + k, 2) for k in range(4)],
                                     "label": ["A", "B", "C", "D"]},
                         "answerKey": "ABCD"[i % 4]})  # fmt: skip
        elif task == "piqa":  # baber/piqa
            rows.append({"goal": _words(i, 6), "sol1": _words(i + 1, 4), "sol2": _words(i + 2, 4),
                         "label": i % 2})  # fmt: skip
        elif task == "winogrande":  # allenai/winogrande, subset winogrande_xl
            rows.append({"sentence": f"{_words(i, 3)} _ {_words(i + 1, 3)}",
                         "option1": _words(i + 2, 1), "option2": _words(i + 3, 1),
                         "answer": str(1 + i % 2)})  # fmt: skip
    return rows


# lm-eval task -> (hub dataset, subset or None, splits lm-eval's config names)
LM_EVAL_MIRROR = {
    "hellaswag": ("Rowan/hellaswag", None, ("train", "validation")),
    "arc_easy": ("allenai/ai2_arc", "ARC-Easy", ("train", "validation", "test")),
    "piqa": ("baber/piqa", None, ("train", "validation")),
    "winogrande": ("allenai/winogrande", "winogrande_xl", ("train", "validation")),
}


def write_lm_eval_mirror(root: Path, documents: int = 6) -> Path:
    """lm-eval's four downstream datasets, a few rows each in their real schemas, laid out as
    `huggingface-cli download --repo-type dataset` lays out the hub's parquet repositories
    (`data/<split>-00000-of-00001.parquet`, or a subset's folder that the README's `configs`
    name)."""
    import datasets

    for task, (repo, subset, splits) in LM_EVAL_MIRROR.items():
        directory = root / repo
        folder = directory / (subset or "data")
        folder.mkdir(parents=True)
        for split in splits:
            rows = lm_eval_rows(task, documents if split != "train" else 2)
            datasets.Dataset.from_list(rows).to_parquet(folder / f"{split}-00000-of-00001.parquet")
        if subset is not None:
            files = "".join(
                f"  - split: {split}\n    path: {subset}/{split}-*\n" for split in splits
            )
            (directory / "README.md").write_text(
                f"---\nconfigs:\n- config_name: {subset}\n  data_files:\n{files}---\n"
            )
    return root


def run_quant(
    model_dir: Path, mirror: Path, tmp_path: Path, method: str, monkeypatch, extra=()
) -> RunRecord:
    monkeypatch.setenv("BUDGETBENCH_CACHE_DIR", str(tmp_path.parent / "quant-cache"))
    overrides = [f"model={model_dir}", "corpus=wikitext-2-raw",
                 *(TINY[i + 1] for i in range(0, len(TINY), 2)), *extra]  # fmt: skip
    prepared = prepare("quant", method, "smoke", "cpu", overrides, data_dir=mirror)
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    (outcome,) = execute(store, prepared, [0], save_machine(store, collect_fingerprint()))
    return outcome


def scalars(outcome: RunRecord) -> dict[str, float]:
    return {name: value for name, (value, _unit) in outcome.scalars.items()}
