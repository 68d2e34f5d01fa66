"""One `quant` run: load the model, build the data, compare the method's model with the
reference, and record everything (see the package docstring for what is measured)."""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import json
import math
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import torch

from tasks.base import InputError, Method, RunContext
from tasks.quant import plots
from tasks.quant.compare import compare_logits, summarize
from tasks.quant.data import EvalData, bos_token, prepare_data, raw_test_text
from tasks.quant.downstream import (
    SYNTHETIC,
    SYNTHETIC_LABEL,
    ChoiceResult,
    evaluate,
    flip_rate,
    metric_key,
    write_tasks,
)
from tasks.quant.formats import quantizable_linears
from tasks.quant.models import (
    SMOKE_MODEL,
    SmokeRecipe,
    load_model,
    model_digest,
    require_model,
    train_smoke_model,
)
from tasks.quant.sampling import (
    against_floor,
    cells_from_json,
    cells_json,
    grid_settings,
    sampling_grid,
)
from tasks.quant.sensitivity import layer_sensitivity, layers_to_probe
from tasks.quant.speed import bits_per_weight, measure_speed, state_bytes


class BrokenModel(RuntimeError):
    """The method's model does not behave like a causal LM (wrong output, non-finite logits)."""


def run_quant(ctx: RunContext, method: Method) -> None:
    from tasks.common.corpus import load_corpus

    config = ctx.config
    device = torch.device(ctx.device)
    corpus = load_corpus(config.corpus, ctx.data_dir, ctx.cache_dir, None)
    ctx.note("corpus", {"name": corpus.name, "sha256": corpus.sha256, "source": corpus.source})
    directory = _model_directory(ctx, corpus)
    digest = model_digest(directory)
    ctx.note("model", {"path": str(directory), "sha256": digest})

    base, tokenizer = load_model(directory, ctx.device)
    test_text = None
    if config.protocol == "llama.cpp":
        test_text, source = raw_test_text(config.corpus, ctx.data_dir)
        ctx.note("test_text", {"source": source, "characters": len(test_text)})
    data = prepare_data(tokenizer, corpus.train, corpus.validation, test_text, config)
    ctx.note("data_sha256", data.sha256)
    ctx.note(
        "protocol",
        {"name": config.protocol, "windows": data.heldout.shape[0], "n_ctx": config.context_len,
         "bos": bos_token(tokenizer) if config.protocol == "llama.cpp" else None},
    )  # fmt: skip
    ctx.record("parameters", sum(p.numel() for p in base.parameters()))
    reference_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[config.reference]
    reference = (
        base if reference_dtype == torch.float32 else copy.deepcopy(base).to(reference_dtype)
    )
    ctx.note("reference", f"{config.reference}: the same model in {reference_dtype}")
    names = quantizable_linears(base)
    if not names:
        raise InputError(f"model {directory} has no linear layer to quantize")
    calibration = data.calibration.to(device)

    run = method.new_run(ctx.seed, ctx.device)
    started = time.perf_counter()
    quantized = method.module.quantize(copy.deepcopy(base), calibration, list(names), run)
    ctx.record("quantize_s", time.perf_counter() - started)
    _check_model(quantized, data, device)
    bits = float(method.constants["BITS_PER_WEIGHT"])
    ctx.record("bits_per_weight", bits)
    ctx.record("measured_bits_per_weight", bits_per_weight(base, quantized, names))

    work_dir = ctx.artifact_dir
    work_dir.mkdir(parents=True, exist_ok=True)
    phases: dict[str, float] = {}
    with _phase(phases, "reference"):
        cached = _reference_results(ctx, reference, tokenizer, data, digest, reference_dtype)
    with _phase(phases, "token_level"):
        _token_level(ctx, reference, quantized, data, device)
    with _phase(phases, "downstream"):
        _downstream(ctx, reference, quantized, tokenizer, data, digest, reference_dtype)
    with _phase(phases, "sampling"):
        _sampling(ctx, method, reference, quantized, data, device, cached, work_dir)
    with _phase(phases, "per_layer"):
        if method.constants["PER_LAYER_SENSITIVITY"]:
            _per_layer(
                ctx, method, run, base, reference, calibration, data, device, names, work_dir
            )
        else:
            ctx.note("per_layer_sensitivity", "not applicable: the method has no per-layer format")
    del base
    with _phase(phases, "speed"):
        _speed(ctx, quantized, data, device)
    ctx.note("phase_seconds", {name: round(seconds, 2) for name, seconds in phases.items()})


@contextlib.contextmanager
def _phase(phases: dict[str, float], name: str):
    """Wall-clock seconds of one part of the run (stored in the run's notes)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        phases[name] = time.perf_counter() - started


def _model_directory(ctx: RunContext, corpus) -> Path:
    config = ctx.config
    if config.model != SMOKE_MODEL:
        return require_model(config.model, ctx.data_dir)
    recipe = SmokeRecipe(
        corpus_sha256=corpus.sha256,
        vocab_size=config.smoke_vocab_size,
        hidden_size=config.smoke_hidden_size,
        layers=config.smoke_layers,
        heads=config.smoke_heads,
        intermediate_size=config.smoke_intermediate_size,
        seq_len=config.smoke_seq_len,
        batch=config.smoke_batch,
        steps=config.smoke_steps,
        learning_rate=config.smoke_learning_rate,
    )
    return train_smoke_model(recipe, corpus.train, ctx.cache_dir, ctx.track)


@torch.no_grad()
def _check_model(model, data: EvalData, device: torch.device) -> None:
    if not isinstance(model, torch.nn.Module):
        raise BrokenModel(f"quantize() returned a {type(model).__name__}, not a torch.nn.Module")
    window = data.heldout[:1].to(device)
    try:
        logits = model(input_ids=window).logits
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise BrokenModel(
            f"the quantized model's forward pass raised {type(exc).__name__}: {first}"
        ) from exc
    vocab = model.get_output_embeddings().weight.shape[0]
    if tuple(logits.shape[:2]) != tuple(window.shape) or logits.shape[-1] < vocab:
        raise BrokenModel(f"the quantized model returned logits of shape {tuple(logits.shape)}")
    if not torch.isfinite(logits).all():
        raise BrokenModel("the quantized model returned non-finite logits (NaN or inf)")


def _batches(tensor: torch.Tensor, size: int):
    for start in range(0, tensor.shape[0], size):
        yield tensor[start : start + size]


@torch.no_grad()
def _logits(model, windows: torch.Tensor) -> torch.Tensor:
    return model(input_ids=windows).logits.float()


def _token_level(ctx: RunContext, reference, quantized, data: EvalData, device) -> None:
    stats = []
    batches = list(_batches(data.heldout, ctx.config.batch_size))
    for batch in ctx.track(batches, "comparing logits", len(batches)):
        batch = batch.to(device)
        stats.append(compare_logits(_logits(reference, batch), _logits(quantized, batch), batch))
    summary = summarize(stats)
    ctx.record("quality_retained", 100.0 * math.exp(-summary["ln_ppl_ratio"]))
    for name, value in summary.items():
        if not math.isnan(value):  # the correlation is undefined when an error is zero
            ctx.record(name, value)


def _cache_path(ctx: RunContext, kind: str, *parts) -> Path:
    """Where the reference's results for these inputs are cached (see the package docstring)."""
    import transformers

    key_text = json.dumps(
        [kind, *parts, ctx.device, torch.__version__, transformers.__version__], sort_keys=True
    )
    key = hashlib.sha256(key_text.encode()).hexdigest()[:20]
    return ctx.cache_dir / "quant-reference" / f"{kind}-{key}.json"


def _write_cache(path: Path, results: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".tmp-{time.time_ns()}")
    temporary.write_text(json.dumps(results))
    temporary.replace(path)


def _reference_results(ctx: RunContext, reference, tokenizer, data, digest, dtype) -> dict:
    """The reference's sampling grid and its floor, from the cache or computed once."""
    config = ctx.config
    settings = {
        name: getattr(config, name)
        for name in ("temperatures", "top_ks", "max_new_tokens", "generation_seeds", "batch_size")
    }
    path = _cache_path(ctx, "sampling", digest, data.sha256, settings, str(dtype))
    if path.is_file():
        ctx.note("reference_cache", f"reused {path}")
        return json.loads(path.read_text())
    prompts = data.prompts.to(next(reference.parameters()).device)
    cells = sampling_grid(reference, reference, prompts, config)
    floor = sampling_grid(reference, reference, prompts, config, config.generation_seeds)
    results = {"sampling": cells_json(cells), "floor": cells_json(floor)}
    _write_cache(path, results)
    ctx.note("reference_cache", f"computed {path}")
    return results


def _downstream(ctx: RunContext, reference, quantized, tokenizer, data, digest, dtype) -> None:
    """Both models on the profile's lm-eval tasks; the reference's answers come from the cache
    when the same documents (lm-eval's hashes) were scored before."""
    import lm_eval

    config = ctx.config
    tasks = list(config.downstream)
    with tempfile.TemporaryDirectory(prefix="budgetbench-quant-") as temporary_dir:
        task_dir = write_tasks(tasks, data.choice_items, ctx.data_dir, Path(temporary_dir))
        score = lambda model: evaluate(  # noqa: E731
            model, tokenizer, task_dir, tasks, config.batch_size, config.choice_items
        )
        mine = score(quantized)
        documents = {task: result.doc_hashes for task, result in mine.items()}
        path = _cache_path(
            ctx, "downstream", digest, documents, str(dtype), config.batch_size, lm_eval.__version__
        )
        if path.is_file():
            theirs = {task: ChoiceResult(**row) for task, row in
                      json.loads(path.read_text()).items()}  # fmt: skip
        else:
            theirs = score(reference)
            _write_cache(path, {task: asdict(result) for task, result in theirs.items()})
    pooled_mine, pooled_theirs = [], []
    for task in tasks:
        if theirs[task].doc_hashes != mine[task].doc_hashes:
            raise RuntimeError(f"lm-eval {task}: the two models were scored on other documents")
        key = f"downstream_{metric_key(task)}"
        ctx.record(f"{key}_accuracy", mine[task].accuracy)
        if mine[task].accuracy_norm is not None:
            ctx.record(f"{key}_accuracy_norm", mine[task].accuracy_norm)
        ctx.record(f"{key}_accuracy_reference", theirs[task].accuracy)
        ctx.record(f"{key}_flip_rate", flip_rate(theirs[task].correct, mine[task].correct))
        pooled_mine += mine[task].correct
        pooled_theirs += theirs[task].correct
    ctx.record("choice_accuracy", 100.0 * sum(pooled_mine) / len(pooled_mine))
    ctx.record("choice_accuracy_reference", 100.0 * sum(pooled_theirs) / len(pooled_theirs))
    ctx.record("choice_flip_rate", flip_rate(pooled_theirs, pooled_mine))
    described = {
        task: (
            f"{SYNTHETIC_LABEL}: {len(mine[task].correct)} held-out items, pick the true"
            f" {config.choice_continuation_words}-word continuation of"
            f" {config.choice_context_words} words among {config.choice_count}"
            if task == SYNTHETIC
            else f"lm-eval {task}, zero-shot, {len(mine[task].correct)} documents"
        )
        for task in tasks
    }
    ctx.note("downstream", described)


def _sampling(ctx, method, reference, quantized, data, device, cached, work_dir: Path) -> None:
    reference_cells = cells_from_json(cached["sampling"])
    floor_cells = cells_from_json(cached["floor"])
    cells = sampling_grid(quantized, reference, data.prompts.to(device), ctx.config)
    analysis = against_floor(reference_cells, floor_cells, cells, ctx.config.floor_bootstrap)
    ctx.record("sampling_departure_mean", analysis.mean_abs)
    ctx.record("sampling_departure_max", analysis.max_abs)
    ctx.record("sampling_floor_max", analysis.floor)
    ctx.record("sampling_beyond_floor", analysis.beyond)
    ctx.record("sampling_beyond_floor_low", analysis.beyond_low)
    ctx.record("sampling_beyond_floor_high", analysis.beyond_high)
    ctx.record("sampling_significant_cells", sum(c.significant for c in analysis.cells))
    ctx.record("sampling_worst_temperature", analysis.worst.temperature)
    if analysis.band is not None:
        ctx.record("sampling_band_low", analysis.band[0])
        ctx.record("sampling_band_high", analysis.band[1])
    ctx.note("sampling_worst_cell", asdict(analysis.worst))
    ctx.note(
        "sampling_floor",
        f"the reference against itself with seeds {ctx.config.generation_seeds}.."
        f"{2 * ctx.config.generation_seeds - 1}; intervals: {ctx.config.floor_bootstrap}"
        f" bootstrap resamples of the {data.prompts.shape[0]} prompts",
    )
    temperatures = sorted({t for t, _ in grid_settings(ctx.config.temperatures, ctx.config.top_ks)})
    for temperature in temperatures:
        mine = [c for c in cells if c.temperature == temperature]
        theirs = [c for c in reference_cells if c.temperature == temperature]
        again = [c for c in floor_cells if c.temperature == temperature]
        mean = lambda rows, field: sum(getattr(c, field) for c in rows) / len(rows)  # noqa: E731
        ctx.record_point("sampling_nll", temperature, mean(mine, "nll"))
        ctx.record_point("sampling_reference_nll", temperature, mean(theirs, "nll"))
        ctx.record_point(
            "sampling_nll_departure", temperature, mean(mine, "nll") - mean(theirs, "nll")
        )
        ctx.record_point(
            "sampling_floor_departure", temperature, mean(again, "nll") - mean(theirs, "nll")
        )
        ctx.record_point("sampling_distinct_2", temperature, mean(mine, "distinct_2"))
        ctx.record_point("sampling_repetition", temperature, mean(mine, "repetition"))
    grid = work_dir / "sampling-grid.json"
    grid.write_text(
        json.dumps(
            {"reference": cached["sampling"], "floor": cached["floor"],
             method.name: cells_json(cells),
             "departures": [asdict(c) | {"significant": c.significant} for c in analysis.cells],
             "floor_max": analysis.floor},
            indent=1,
        )
    )  # fmt: skip
    _save(ctx, "sampling-grid.json", grid, "application/json")
    figure = plots.sampling_curves(reference_cells, cells, method.name, work_dir / "sampling.svg")
    _save(ctx, "sampling-sensitivity.svg", figure, "image/svg+xml")
    figure = plots.departure_heatmap(analysis, method.name, work_dir / "departure.svg")
    _save(ctx, "sampling-departure.svg", figure, "image/svg+xml")


def _per_layer(
    ctx, method, run, base, reference, calibration, data, device, names, work_dir
) -> None:
    windows = data.heldout[: ctx.config.sensitivity_windows].to(device)
    reference_logits = _logits(reference, windows)
    probed = layers_to_probe(names, ctx.config.sensitivity_max_layers)
    layers = layer_sensitivity(
        base,
        functools.partial(method.module.quantize, run=run),
        calibration,
        windows,
        reference_logits,
        probed,
        ctx.track,
    )
    ctx.record("layers_probed", len(layers))
    ctx.record("layer_kl_max", layers[0].kl)
    ctx.record("layer_kl_mean", sum(layer.kl for layer in layers) / len(layers))
    ctx.record("layer_loss_increase_max", max(layer.loss_increase for layer in layers))
    ctx.note("most_sensitive_layers", [layer.name for layer in layers[:5]])
    ranked = work_dir / "layer-sensitivity.json"
    ranked.write_text(json.dumps([asdict(layer) for layer in layers], indent=1))
    _save(ctx, "layer-sensitivity.json", ranked, "application/json")
    figure = plots.sensitivity_heatmap(layers, method.name, work_dir / "heatmap.svg")
    _save(ctx, "layer-sensitivity.svg", figure, "image/svg+xml")


def _speed(ctx: RunContext, quantized, data: EvalData, device) -> None:
    config = ctx.config
    length = min(config.speed_prompt_len, data.heldout.shape[1])
    prompt = data.heldout[:1, :length].to(device)
    result = measure_speed(quantized, prompt, config.speed_decode_tokens, config.speed_repeats)
    ctx.record("prefill_tokens_per_s", result.prefill_tokens_per_s)
    ctx.record("decode_tokens_per_s", result.decode_tokens_per_s)
    ctx.record("time_to_first_token_s", result.time_to_first_token_s, samples=result.ttft_samples)
    ctx.record("weight_mib", state_bytes(quantized) / 2**20)
    ctx.record("peak_memory_mib", result.peak_memory_mib)


def _save(ctx: RunContext, name: str, path: Path, media_type: str) -> None:
    ctx.save_artifact(name, path, media_type=media_type)
