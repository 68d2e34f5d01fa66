"""One cramming run: prepare data (untimed), build and train the model (timed), evaluate
(untimed), score downstream. Imported only when a cramming run starts (it imports torch)."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import torch
from tokenizers import Tokenizer

from tasks.base import InputError, Method, RunContext
from tasks.common.heldout import heldout_loss
from tasks.common.measure import PeakResidentMemory, time_per_call
from tasks.common.model import (
    Encoder,
    EncoderConfig,
    MaskedLanguageModel,
    training_flops_per_token,
)
from tasks.common.precision import resolve_precision
from tasks.common.pretraining_data import prepare_pretraining_data
from tasks.cramming.checkpoints import load_checkpoint, save_checkpoint
from tasks.cramming.training import pretrain

# Dense bf16 tensor-core peaks (TFLOP/s) from the vendors' data sheets, by a substring of the
# device name; the first match wins, so more specific names come first.
GPU_BF16_PEAK_TFLOPS = (
    ("H100 PCIe", 756.0),
    ("H100", 989.4),
    ("H200", 989.4),
    ("GH200", 989.4),
    ("A100", 312.0),
    ("A6000", 154.8),
    ("L40S", 362.1),
    ("L4", 121.0),
    ("A10", 125.0),
    ("RTX 4090", 165.2),
    ("RTX 3090", 71.0),
)


class PretrainedWeights(RuntimeError):
    """The method changed the model's weights outside training (e.g. loaded a checkpoint)."""


def run_cramming(ctx: RunContext, method: Method) -> None:
    config = ctx.config
    if config.checkpoint:
        _evaluate_checkpoint(ctx, Path(config.checkpoint))
        return
    device = torch.device(ctx.device)
    data = prepare_pretraining_data(ctx)
    tokenizer, validation, vocabulary = data.tokenizer, data.validation, data.vocabulary
    train = data.train
    if isinstance(train, torch.Tensor):
        train = _prepare_training_sequences(train, config, tokenizer.token_to_id("[UNK]"))
    elif config.filter_max_unknown < 1.0 or config.sort_by_token_frequency:
        raise InputError("filter_max_unknown and sort_by_token_frequency need a packed corpus")
    count = len(train) if isinstance(train, torch.Tensor) else "streamed"
    ctx.note("sequences", {"train": count, "validation": len(validation)})
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    run = method.new_run(ctx.seed, ctx.device, config.budget_s)
    # Untimed, as in cramming's pretrain.py (its clocks start once the model is built).
    encoder_config = method.module.model_config(
        vocab_size=vocabulary.size, max_seq_len=config.seq_len, budget_s=config.budget_s, run=run
    )
    _check_config(encoder_config, vocabulary.size, config.seq_len)
    model = MaskedLanguageModel(encoder_config).to(device)
    ctx.note("model_config", encoder_config.__dict__)
    initial = _weights_digest(model)
    # Sampled every 100 ms, not 20: on a 2-core CPU each wake-up of the sampler takes a core from
    # the training threads, and a training step's peak recurs every step.
    with PeakResidentMemory(interval_s=0.1) as resident:
        result = pretrain(
            ctx,
            model,
            method.module,
            run,
            train,
            validation,
            vocabulary,
            config.micro_batch,
            config.eval_points,
            check_weights=lambda: _require_unchanged(model, initial),
        )

    precision = resolve_precision(run.hyperparameters.get("precision", "fp32"), device)
    ctx.note("micro_batch", {"sequences": result.micro_batch})
    ctx.record("initial_mlm_loss", result.initial_heldout_loss)
    ctx.record("final_mlm_loss", result.final_heldout_loss)
    tokens_per_s = result.tokens / result.timed_s
    flops = training_flops_per_token(model)
    peak, source = _peak_flops(device, precision)
    ctx.note("peak_flops", {"tflops": peak / 1e12, "source": source})
    ctx.record("tokens_per_s", tokens_per_s)
    ctx.record("mfu", 100.0 * tokens_per_s * flops / peak)
    ctx.record("steps", result.steps)
    ctx.record("micro_batch_steps", result.micro_batches)
    ctx.record("budget_used_s", result.timed_s)
    ctx.record("budget_overshoot_s", max(0.0, result.timed_s - config.budget_s))
    ctx.record("longest_step_s", result.longest_step_s)
    ctx.record("peak_memory_mib", _peak_memory_mib(device, resident))
    ctx.record("flops_per_token", flops)
    ctx.record("parameters", sum(p.numel() for p in model.parameters()))
    checkpoint = ctx.artifact_dir / "encoder.pt"
    save_checkpoint(checkpoint, model, tokenizer)
    ctx.save_artifact("encoder", checkpoint, media_type="application/octet-stream")
    _downstream(ctx, model.encoder, tokenizer)


def _evaluate_checkpoint(ctx: RunContext, path: Path) -> None:
    """No pretraining: the checkpoint's held-out loss on the profile's validation text (tokenized
    with the checkpoint's own tokenizer) and its downstream scores, through the same code as a
    run's own encoder. The run is noted as a checkpoint evaluation with the file's SHA-256. The
    quality gate's baseline is the same architecture untrained (the harness's initialisation
    with the run's seed), on the same held-out sequences."""
    model, tokenizer = load_checkpoint(path)
    ctx.note("checkpoint", {"path": str(path), "sha256": _file_sha256(path)})
    ctx.note("model_config", model.config.__dict__)
    data = prepare_pretraining_data(ctx, tokenizer)
    device = torch.device(ctx.device)
    model.to(device)
    precision = resolve_precision("auto", device)
    batch = ctx.config.micro_batch
    torch.manual_seed(ctx.seed)  # as a run initialises its model: the gate's baseline
    untrained = MaskedLanguageModel(model.config).to(device)
    initial = heldout_loss(untrained, data.validation, data.vocabulary, device, batch, precision)
    del untrained
    loss = heldout_loss(model, data.validation, data.vocabulary, device, batch, precision)
    ctx.record_point("heldout_mlm_loss", 0.0, loss)
    ctx.record("initial_mlm_loss", initial)
    ctx.record("final_mlm_loss", loss)
    ctx.record("flops_per_token", training_flops_per_token(model))
    ctx.record("parameters", sum(p.numel() for p in model.parameters()))
    _downstream(ctx, model.encoder, tokenizer)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _prepare_training_sequences(train: torch.Tensor, config, unknown_id: int) -> torch.Tensor:
    """Cramming's data options: drop sequences with too many [UNK] tokens, sort by how common
    their tokens are (most common first)."""
    if config.filter_max_unknown < 1.0:
        unknown_share = (train == unknown_id).float().mean(dim=1)
        train = train[unknown_share <= config.filter_max_unknown]
        if len(train) == 0:
            raise ValueError("filter_max_unknown removed every training sequence")
    if config.sort_by_token_frequency:
        counts = torch.bincount(train.flatten().long())
        mean_frequency = counts[train.long()].float().mean(dim=1)
        train = train[torch.argsort(mean_frequency, descending=True, stable=True)]
    return train


def _check_config(config: object, vocab_size: int, seq_len: int) -> None:
    if not isinstance(config, EncoderConfig):
        raise TypeError(
            f"model_config must return tasks.common.model.EncoderConfig (an encoder-only"
            f" transformer), got {type(config).__name__}"
        )
    if (config.vocab_size, config.max_seq_len) != (vocab_size, seq_len):
        raise ValueError(f"model_config must use vocab_size={vocab_size} and max_seq_len={seq_len}")


def _weights_digest(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()


def _require_unchanged(model: torch.nn.Module, initial: str) -> None:
    if _weights_digest(model) != initial:
        raise PretrainedWeights(
            "configure_optimizer changed the model's weights: training must start from the"
            " harness's initialisation (no pretrained components)"
        )


def _peak_flops(device: torch.device, precision: str) -> tuple[float, str]:
    if device.type == "cuda" and precision == "bf16":
        name = torch.cuda.get_device_name(device)
        for key, tflops in GPU_BF16_PEAK_TFLOPS:
            if key in name:
                return tflops * 1e12, f"data-sheet dense bf16 peak of {name}"
    # A peak is the best rate seen: the fastest repetition of a matmul large enough to run at
    # the device's full rate (the median of a 512 x 512 one on a contended CPU had put an MFU
    # above 100 %).
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    n = 2048 if device.type == "cuda" else 1024
    a = torch.randn(n, n, device=device, dtype=dtype)
    seconds = min(time_per_call(lambda: a @ a, device, warmup=2, repeats=5, min_repeat_s=0.1))
    return 2.0 * n**3 / seconds, f"best of 5 timings of a {n}x{n} {dtype} matmul on {device}"


def _peak_memory_mib(device: torch.device, resident: PeakResidentMemory) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resident.peak_bytes / 2**20


def _downstream(ctx: RunContext, encoder: Encoder, tokenizer: Tokenizer) -> None:
    """GLUE with cramming's protocol, recorded both ways (see tasks/cramming/downstream.py)."""
    config = ctx.config
    if config.downstream == "none":
        return
    from tasks.cramming import CRAMMING_ONLY, downstream

    protocol = downstream.FinetuneProtocol(
        epochs=config.finetune_epochs, learning_rate=config.finetune_learning_rate
    )
    score = downstream.score_glue(
        _for_finetuning(encoder),
        tokenizer,
        config.glue_tasks,
        ctx.data_dir,
        max_train_examples=config.glue_max_train_examples or None,
        max_dev_examples=config.glue_max_dev_examples or None,
        protocol=protocol,
        device=ctx.device,
        seed=ctx.seed,
        track=ctx.track,
        cache_dir=ctx.cache_dir / "datasets",
        repeats=config.finetune_repeats,
    )
    ctx.note("glue_examples", {entry: list(sizes) for entry, sizes in score.examples.items()})
    prefix = "glue_capped" if config.glue_is_capped else "glue"
    for entry, metrics in score.tasks.items():
        name = f"{prefix}_{entry.replace('-', '_')}"
        ctx.record(name, metrics["score"], samples=score.repeats[entry]["score"])
        if entry in CRAMMING_ONLY:
            metric = CRAMMING_ONLY[entry]
            samples = score.repeats[entry][metric]
            ctx.record(f"{name}_{metric}", metrics[metric], samples=samples)
    ctx.record(f"{prefix}_average", score.average)
    ctx.record(f"{prefix}_cramming_average", score.cramming_average)


FINETUNE_DROPOUT = 0.1


def _for_finetuning(encoder: Encoder) -> Encoder:
    """The pretrained encoder with dropout 0.1, whatever the method pretrained with: cramming
    fine-tunes every model with the same dropout, and the protocol is the harness's."""
    config = dataclasses.replace(encoder.config, dropout=FINETUNE_DROPOUT)
    copy = Encoder(config).to(next(encoder.parameters()).device)
    copy.load_state_dict(encoder.state_dict())
    return copy
