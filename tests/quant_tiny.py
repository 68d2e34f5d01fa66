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
