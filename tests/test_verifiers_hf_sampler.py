"""The HF sampler with a tiny random model saved locally: its samples are garbage, but they are
generated, truncated, returned as programs and scored through the harness without crashing."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.run.machine import collect_fingerprint
from harness.run.runner import execute, prepare, save_machine
from harness.store import open_store
from tasks.verifiers.methods import hf_sampler

METHOD = str(Path(hf_sampler.__file__))


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    directory = tmp_path_factory.mktemp("tiny-lm")
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<eos>"])
    tokenizer.train_from_iterator(["def f(x):\n    return x + 1\n" * 20], trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<eos>", unk_token="<unk>")
    fast.save_pretrained(directory)
    config = GPT2Config(
        vocab_size=fast.vocab_size, n_positions=1024, n_embd=32, n_layer=1, n_head=2
    )
    GPT2LMHeadModel(config).save_pretrained(directory)
    return directory


def test_truncate_stops_at_the_next_top_level_statement():
    assert hf_sampler.truncate("    return 1\ndef g():\n    pass") == "    return 1"
    assert hf_sampler.truncate("    return 1\n") == "    return 1\n"


def test_hf_sampler_runs_through_the_harness(tiny_model, sqlite_url, tmp_path, monkeypatch):
    monkeypatch.setenv("BUDGETBENCH_CACHE_DIR", str(tmp_path / "cache"))
    overrides = ["problems=2", "samples_per_problem=2", "permutations=5", "timeout_s=2.0",
                 f"hp.model={tiny_model}", "hp.max_new_tokens=8"]  # fmt: skip
    prepared = prepare("verifiers", METHOD, "smoke", "cpu", overrides)
    assert prepared.method.name == "hf-sampler"
    store = open_store(sqlite_url)
    (outcome,) = execute(store, prepared, [0], save_machine(store, collect_fingerprint()))
    assert outcome.status == "succeeded", outcome.error
    assert outcome.scalars["samples_per_problem"][0] == 2
    assert outcome.scalars["pass_at_1_strong"][0] == 0.0  # random weights: nothing passes
