"""One tiny large-batch training at a fixed global batch, in one process or as one rank of a gloo
group: what the data-parallel equivalence test compares (imported by spawned processes too)."""

from __future__ import annotations

from typing import ClassVar

import torch

from tasks.base import BudgetClock, MethodRun
from tasks.common.masking import Vocabulary
from tasks.large_batch import LargeBatchConfig
from tasks.large_batch.scaling import NoiseScaleEstimator
from tasks.large_batch.training import SweepPoint, train_to_target
from tasks.large_batch.workload import encoder_config

GLOBAL_BATCH = 32


class ConstantAdamW:
    """A method module in miniature: AdamW at a constant rate high enough for a tiny model."""

    HYPERPARAMETERS: ClassVar[dict] = {"grad_clip": 1.0}

    @staticmethod
    def configure_optimizer(parameter_groups, peak_rate, batch_size, run):
        return torch.optim.AdamW(parameter_groups, lr=peak_rate)

    @staticmethod
    def learning_rate(step, batch_size, run):
        return 1.0


VOCABULARY = Vocabulary(mask_id=4, special_ids=torch.arange(5), size=64)


def _config() -> LargeBatchConfig:
    return LargeBatchConfig(
        corpus="python-docstrings", max_corpus_characters=0, vocab_size=64, seq_len=16,
        eval_sequences=32, hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32,
        target_loss=3.45, batch_sizes=[GLOBAL_BATCH], micro_batch=8, max_steps=40,
        max_examples=10**6,
    )  # fmt: skip


def _sequences(count: int, seed: int) -> torch.Tensor:
    """Token sequences drawn from a Zipf distribution: a unigram to learn in a few steps."""
    generator = torch.Generator().manual_seed(seed)
    weights = 1.0 / torch.arange(1, 60, dtype=torch.float64)
    tokens = torch.multinomial(weights, count * 16, replacement=True, generator=generator)
    return (tokens + 5).view(count, 16).to(torch.int32)


def train_tiny(rank: int, world: int, init_file: str) -> dict:
    """Train at GLOBAL_BATCH; with world > 1, as rank `rank` of a gloo group."""
    import torch.distributed as dist

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matmuls: one thread each, two processes on two cores
    if world > 1:
        dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                                world_size=world)  # fmt: skip
    try:
        config = _config()
        point = SweepPoint(GLOBAL_BATCH, config.step_cap(GLOBAL_BATCH), config.micro_batch,
                           config.target_loss, 0.15, 1.1, "fp32")  # fmt: skip
        result = train_to_target(
            point, ConstantAdamW, encoder_config(config, VOCABULARY.size), _sequences(512, 0),
            _sequences(32, 1), VOCABULARY, peak_rate=1e-2, seed=0, device="cpu",
            clock=BudgetClock(), run=MethodRun(ConstantAdamW.HYPERPARAMETERS, 0, "cpu"),
        )  # fmt: skip
    finally:
        torch.set_num_threads(threads)
        if world > 1:
            dist.destroy_process_group()
    return {
        "steps_to_target": result.steps_to_target,
        "evaluations": result.evaluations,
        "noise_scale": _noise_scale(result.noise_pairs),
    }


def _noise_scale(pairs: list[tuple[int, int, float, int, float]]) -> float | None:
    """B_simple over every step of the run (the test compares runs, not a loss level)."""
    estimator = NoiseScaleEstimator()
    for _, small, small_sq, big, big_sq in pairs:
        estimator.add(small, small_sq, big, big_sq)
    return estimator.noise_scale
