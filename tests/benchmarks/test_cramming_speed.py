"""The cramming training loop must not be where time goes (issues 3 and 15): on the same model,
batch, exact-count masking and optimizer, the harness's tokens/s (a real run through the runner
and store, its clock, its batch builder, its heartbeat and memory sampler) is at least 98 % of a
minimal hand-written PyTorch loop. Both are timed alike, as cramming times: from building the
optimizer (the model is built before the clock starts) to the end of the same number of seconds.

Rounds alternate minimal-harness, five times; each round's ratio is kept (extra_info) and the
median ratio is asserted, so one disturbed round does not decide. On the quiet 2-core VM single
rounds vary by about 3 % either way; the medians measured 1.02, 1.00 and 1.00 once the CPU loop
stopped masking on a second thread (which had held it at 0.92-0.97).
"""

from __future__ import annotations

import statistics
import time

import torch

from harness.run.machine import collect_fingerprint
from harness.run.runner import execute, prepare, save_machine
from harness.store import open_store
from tasks.common.corpus import load_corpus
from tasks.common.masking import mask_exact
from tasks.common.model import EncoderConfig, MaskedLanguageModel
from tasks.common.tokenization import SPECIAL_TOKENS, pack_sequences, train_tokenizer

SECONDS = 10.0
ROUNDS = 5
MIN_RATIO = 0.98
BATCH = 16
METHOD = f"""
import torch
from tasks.common.model import EncoderConfig
HYPERPARAMETERS = {{"mask_rate": 0.15, "precision": "fp32"}}

def model_config(vocab_size, max_seq_len, budget_s, run):
    return EncoderConfig(vocab_size, max_seq_len, hidden_size=128, num_layers=2, num_heads=2,
                         intermediate_size=512, norm="pre", sparse_prediction=True, dropout=0.0)

def configure_optimizer(model, run):
    return torch.optim.AdamW(model.parameters(), lr=5e-4)

def learning_rate(progress, step, run):
    return 1.0

def batch_size(progress, run):
    return {BATCH}
"""


def minimal_loop_tokens_per_s(cache_dir) -> float:
    """The same data, masking, model and optimizer in the plainest loop."""
    corpus = load_corpus("python-docstrings", None, cache_dir, None)
    tokenizer = train_tokenizer(corpus.train, 4096, corpus.sha256, cache_dir)
    train = pack_sequences(tokenizer, corpus.train, 128, cache_dir, f"{corpus.sha256}:train")
    special = torch.tensor([tokenizer.token_to_id(t) for t in SPECIAL_TOKENS])
    mask_id = tokenizer.token_to_id("[MASK]")
    config = EncoderConfig(
        tokenizer.get_vocab_size(), 128, hidden_size=128, num_layers=2, num_heads=2,
        intermediate_size=512, norm="pre", sparse_prediction=True, dropout=0.0,
    )  # fmt: skip
    torch.manual_seed(0)
    model = MaskedLanguageModel(config)
    start = time.perf_counter()
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4)
    generator = torch.Generator().manual_seed(0)
    tokens = 0
    while time.perf_counter() - start < SECONDS:
        batch = train[torch.randint(len(train), (BATCH,), generator=generator)]
        inputs, labels = mask_exact(batch, 0.15, mask_id, special, 4096, generator)
        model(inputs, labels).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        tokens += batch.numel()
    return tokens / (time.perf_counter() - start)


def test_training_loop_overhead_against_a_minimal_loop(benchmark, tmp_path, monkeypatch):
    monkeypatch.setenv("BUDGETBENCH_CACHE_DIR", str(tmp_path / "cache"))
    method = tmp_path / "constant.py"
    method.write_text(METHOD)
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    overrides = [f"budget_s={SECONDS}", "downstream=none", "eval_points=1", "eval_sequences=16"]
    prepared = prepare("cramming", str(method), "smoke", "cpu", overrides)
    machine_id = save_machine(store, collect_fingerprint())
    minimal_loop_tokens_per_s(tmp_path / "cache")  # prepares the corpus and warms up

    def alternate() -> tuple[list[float], list[float]]:
        minimal, harness = [], []
        for _ in range(ROUNDS):
            minimal.append(minimal_loop_tokens_per_s(tmp_path / "cache"))
            (outcome,) = execute(store, prepared, [0], machine_id)
            harness.append(outcome.scalars["tokens_per_s"][0])
        return minimal, harness

    minimal, harness = benchmark.pedantic(alternate, rounds=1)
    ratios = [h / m for h, m in zip(harness, minimal, strict=True)]
    ratio = statistics.median(ratios)
    benchmark.extra_info.update(
        harness_tokens_per_s=harness, minimal_tokens_per_s=minimal, ratios=ratios, ratio=ratio
    )
    print(f"harness {harness} tokens/s, minimal loop {minimal} tokens/s, ratios {ratios}")
    assert ratio >= MIN_RATIO
