"""One run of the `verifiers` task: problems -> samples -> sandboxed verdicts -> analysis."""

from __future__ import annotations

import json
import time
from concurrent.futures import as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tasks.base import Method, RunContext
from tasks.verifiers import analysis, file_sha256, paper, problems, samples, verdicts
from tasks.verifiers.bootstrap import Bootstrap
from tasks.verifiers.plots import save_line_plot
from tasks.verifiers.sandbox import Job, Limits, Sandbox


@dataclass(frozen=True)
class Scored:
    """One sample's verdicts."""

    task_id: str
    index: int
    program: str
    verdict: verdicts.Verdict


def run_workload(ctx: RunContext, method: Method) -> None:
    config = ctx.config
    synthetic = method.constants["SYNTHETIC"]
    label = "SYNTHETIC samples (mutation sampler)" if synthetic else f"samples of {method.name}"
    ctx.note("sample_source", label + (f": {config.samples}" if config.samples else ""))
    problem_list = _load_problems(ctx)
    profile = problem_list
    if method.constants["IMPORTS_STATUSES"]:
        scored, n = _imported(ctx, profile)
        _analyse(ctx, method, [], scored, n, label + " (EvalPlus's statuses, not re-run)")
        return
    limits = Limits(timeout_s=config.timeout_s, memory_mb=config.memory_mb)
    hidden = [p for p in (ctx.cache_dir, ctx.data_dir, ctx.artifact_dir.parent) if p]
    with Sandbox(limits, config.workers, hidden) as sandbox:
        prepared = problems.prepare_tests(
            problem_list, sandbox, ctx.cache_dir / "verifiers-tests", config.split_fraction
        )
        _note_preparation(ctx, prepared)
        problem_list = [p for p in problem_list if p.task_id in prepared.suites]
        programs, n, missing = _samples(ctx, method, problem_list, profile)
        programs = {t: codes for t, codes in programs.items() if t in prepared.suites}
        problem_list = [p for p in problem_list if p.task_id in programs]
        started = time.perf_counter()
        scored = _verify(ctx, sandbox, prepared.suites, programs)
        elapsed = time.perf_counter() - started
        ctx.note("sandbox_isolation", sandbox.isolation)
    run = len({(s.task_id, s.program) for s in scored})  # distinct programs, each run once
    ctx.record("programs_per_s", run / elapsed if elapsed > 0 else 0.0)
    ctx.record("problems_not_covered", len(profile) - len(programs))
    no_sample = verdicts.Verdict(False, False, "failed", "no sample in the samples file")
    scored += [
        Scored(t, i, "", no_sample) for t in missing if t in prepared.suites for i in range(n)
    ]
    _analyse(ctx, method, problem_list, scored, n, label)


def _analyse(
    ctx: RunContext,
    method: Method,
    problem_list: list[problems.Problem],
    scored: list[Scored],
    n: int,
    label: str,
) -> None:
    by_task: dict[str, list[Scored]] = {}
    for item in sorted(scored, key=lambda s: (s.task_id, s.index)):
        by_task.setdefault(item.task_id, []).append(item)
    counts = [
        analysis.TaskCounts(
            task_id,
            tuple(s.verdict.weak for s in items),
            tuple(s.verdict.strong for s in items),
        )
        for task_id, items in by_task.items()
    ]
    _record_analysis(ctx, counts, n, label)
    _record_outcomes(ctx, scored)
    _method_verifier(ctx, method, problem_list, by_task)
    _save_verdicts(ctx, scored)


def _imported(ctx: RunContext, profile: list[problems.Problem]) -> tuple[list[Scored], int]:
    """Verdicts from an EvalPlus eval_results.json (`samples.read_evalplus_results`), every
    task cut to the smallest sample count; missing problems as the samples file's are."""
    config = ctx.config
    path = Path(config.samples)
    read = samples.read_evalplus_results(path, [p.task_id for p in profile])
    if read.missing and config.missing_problems != "fail":
        raise ValueError(f"EvalPlus results file {path} lacks {len(read.missing)} problems")
    digest = file_sha256(path)
    if digest != config.samples_sha256:
        raise ValueError(f"EvalPlus results file {path} changed while the run was starting")
    n = min(len(s) for s in read.statuses.values())
    ctx.note("evalplus_results_file", {"path": str(path), "sha256": digest,
             "tasks_not_in_profile": read.unknown, "missing_problems": read.missing})  # fmt: skip
    ctx.note("samples_file_cut_to", n)
    ctx.record("problems_not_covered", len(read.missing))
    scored = []
    for task_id, statuses in read.statuses.items():
        for index, (weak, strong) in enumerate(statuses[:n]):
            outcome = "passed" if strong else "failed"
            scored.append(Scored(task_id, index, "", verdicts.Verdict(weak, strong, outcome)))
    no_sample = verdicts.Verdict(False, False, "failed", "no sample in the results file")
    scored += [Scored(t, i, "", no_sample) for t in read.missing for i in range(n)]
    return scored, n


def _load_problems(ctx: RunContext) -> list[problems.Problem]:
    config = ctx.config
    problem_list, unloadable = problems.load(config, ctx.data_dir)
    if config.dataset.startswith("mbpp"):
        from tasks.verifiers import mbpp

        base = mbpp.base_path(config.dataset, ctx.data_dir)
        if base is not None and base.is_file():
            ctx.note("dataset_file", {"path": str(base), "sha256": file_sha256(base)})
        ctx.note("problems_not_loaded", unloadable)
    path = problems.strong_tests_path(config, ctx.data_dir)
    if path is not None:
        ctx.note("strong_tests_file", {"path": str(path), "sha256": file_sha256(path)})
    return problem_list


def _note_preparation(ctx: RunContext, prepared: problems.Preparation) -> None:
    ctx.note("problems_skipped", prepared.skipped)
    ctx.note("reference_failed_inputs_dropped", prepared.dropped_inputs)
    suites = prepared.suites.values()
    ctx.note(
        "tests",
        {
            "weak_inputs": sum(s.weak_count for s in suites),
            "strong_inputs": sum(len(s.inputs) for s in suites),
        },
    )


def _samples(
    ctx: RunContext,
    method: Method,
    problem_list: list[problems.Problem],
    profile: list[problems.Problem],
) -> tuple[dict[str, list[str]], int, list[str]]:
    """Programs per problem (a samples file's for every problem of the `profile`; a method's
    for `problem_list`, those with tests), n, and the problems a samples file lacks."""
    config = ctx.config
    if config.samples:
        path = Path(config.samples)
        read = samples.read_samples(path, {p.task_id: p.prompt for p in profile})
        digest = file_sha256(path)
        if digest != config.samples_sha256:  # changed between resolving and reading
            raise ValueError(f"samples file {path} changed while the run was starting")
        if read.missing and config.missing_problems != "fail":
            raise ValueError(f"samples file {path} lacks {len(read.missing)} problems")
        ctx.note(
            "samples_file",
            {
                "path": str(path),
                "sha256": digest,
                "lines": read.lines,
                "skipped_lines": read.skipped,
                "skipped_examples": read.problems,
                "missing_problems": read.missing,
            },
        )
        programs, n = samples.equal_counts(read.programs)
        ctx.note("samples_file_cut_to", n)
        ctx.record("samples_file_skipped_lines", read.skipped)
        return programs, n, read.missing
    n = config.samples_per_problem
    run = method.new_run(ctx.seed, ctx.device)
    generated = method.module.generate(problem_list, n, ctx.seed, run)
    programs: dict[str, list[str]] = {}
    for problem in problem_list:
        codes = generated.get(problem.task_id) if isinstance(generated, dict) else None
        if not isinstance(codes, list) or len(codes) != n:
            raise ValueError(f"generate() must return {n} programs for {problem.task_id}")
        if not all(isinstance(code, str) for code in codes):
            raise ValueError(f"generate() returned a non-string program for {problem.task_id}")
        programs[problem.task_id] = codes
    return programs, n, []


def _verify(
    ctx: RunContext,
    sandbox: Sandbox,
    suites: dict[str, problems.TestSuite],
    programs: dict[str, list[str]],
) -> list[Scored]:
    """Every sample's verdict. Identical programs of a problem run once and share the verdict
    (a sample file at temperature 0.2 repeats about two thirds of its programs): the same code
    on the same inputs gives the same values, so only a program whose result depends on chance
    (randomness, the clock, a time limit it nearly reaches) could differ between copies, and it
    gets one draw for all of them instead of one each. The longest problems (by the canonical
    solution's time) start first, so no long job is left running alone at the end."""
    config = ctx.config
    limits = verdicts.TimeLimits(
        config.min_time_limit_s, config.time_limit_factor, config.timeout_s
    )
    copies: dict[tuple[str, str], list[int]] = {}
    for task_id, codes in programs.items():
        for index, code in enumerate(codes):
            copies.setdefault((task_id, code), []).append(index)
    ctx.note("programs_run", {"samples": sum(map(len, copies.values())), "distinct": len(copies)})
    pending = {}
    for task_id, code in sorted(copies, key=lambda key: -sum(suites[key[0]].times)):
        suite = suites[task_id]
        judge = verdicts.Judge(suite, config.find_zero)
        job = Job(code, suite.entry_point, suite.inputs, timeout_s=limits.job_s(suite),
                  time_limits=limits.per_input(suite), guard=True, judge=judge)  # fmt: skip
        pending[sandbox.submit(job)] = (task_id, code, judge)
    scored = []
    for future in ctx.track(as_completed(pending), "verifying programs", len(pending)):
        task_id, code, judge = pending[future]
        verdict = judge.verdict(future.result())
        scored += [Scored(task_id, i, code, verdict) for i in copies[task_id, code]]
    return scored


def _record_analysis(
    ctx: RunContext, counts: list[analysis.TaskCounts], n: int, label: str
) -> None:
    config = ctx.config
    ks = list(range(1, n + 1))
    ctx.record("problems", len(counts))
    ctx.record("samples_per_problem", n)
    ctx.record("pass_at_1_strong", analysis.mean_pass_at_k(counts, 1, strong=True))
    ctx.record("pass_at_1_weak", analysis.mean_pass_at_k(counts, 1, strong=False))
    ctx.record("pass_at_n_strong", analysis.mean_pass_at_k(counts, n, strong=True))
    ctx.record("pass_at_n_weak", analysis.mean_pass_at_k(counts, n, strong=False))
    for k in (10, 100):
        if n >= k:
            ctx.record(f"pass_at_{k}_strong", analysis.mean_pass_at_k(counts, k, strong=True))
            ctx.record(f"pass_at_{k}_weak", analysis.mean_pass_at_k(counts, k, strong=False))
    weak_passes = sum(t.weak_passes for t in counts)
    false_positives = sum(t.weak_passes - t.both for t in counts)
    ctx.record("false_positive_rate", false_positives / weak_passes if weak_passes else 0.0)
    ceiling = analysis.resampling_ceiling(counts)
    ctx.record("resampling_ceiling", ceiling)
    closed = [analysis.resampling_accuracy(counts, k) for k in ks]
    simulated = analysis.simulate_resampling(counts, ks, config.permutations, ctx.seed)
    types = analysis.fit_two_types(counts)
    model = [analysis.two_type_accuracy(types, k) for k in ks]
    ctx.record("resampling_accuracy_at_n", closed[-1])
    ctx.record("two_type_ceiling", analysis.two_type_ceiling(types))
    ctx.note("two_type_model", [t.__dict__ for t in types])
    flagged = [t.task_id for t in counts if t.verifier_false_negatives > t.both]
    ctx.record("verifier_false_negative_tasks", len(flagged))
    ctx.note("verifier_false_negative_tasks", flagged)
    ctx.note(
        "strong_given_weak",
        {t.task_id: t.strong_given_weak for t in counts if t.strong_given_weak is not None},
    )
    for k, strong, weak, c, s, m in zip(
        ks,
        (analysis.mean_pass_at_k(counts, k, strong=True) for k in ks),
        (analysis.mean_pass_at_k(counts, k, strong=False) for k in ks),
        closed,
        simulated,
        model,
        strict=True,
    ):
        ctx.record_point("pass_at_k_strong", k, strong)
        ctx.record_point("pass_at_k_weak", k, weak)
        ctx.record_point("resampling_accuracy", k, c)
        ctx.record_point("resampling_accuracy_simulated", k, s)
        ctx.record_point("two_type_model_accuracy", k, m)
    utilities = {}
    capped = 0
    for cost in config.costs:
        name = f"{cost:g}"
        utilities[name] = [analysis.utility(counts, k, cost) for k in ks]
        for k, value in zip(ks, utilities[name], strict=True):
            ctx.record_point(f"utility_cost_{name}", k, value)
        best_k, best = analysis.optimal_k(counts, cost, n)
        ctx.record(f"optimal_k_cost_{name}", best_k)
        ctx.record(f"utility_at_optimal_k_cost_{name}", best)
        capped += best_k == n
    ctx.record("optimal_k_capped_at_n", capped)
    _record_paper(ctx, counts, ks)
    band = _record_intervals(ctx, counts, n)
    pass_1 = analysis.mean_pass_at_k(counts, 1, strong=True)
    _plots(ctx, label, ks, closed, simulated, model, ceiling, pass_1, utilities, band)


def _record_paper(ctx: RunContext, counts: list[analysis.TaskCounts], ks: list[int]) -> None:
    """The paper's conventions (`paper.py`), labelled paper_*."""
    kept = paper.false_negative_filter(counts)
    n = ks[-1]
    ctx.record("paper_false_negative_tasks_dropped", len(counts) - len(kept))
    ctx.record("paper_conditional_accuracy", paper.conditional_accuracy(kept))
    ctx.record("paper_false_positive_rate_by_task", paper.false_positive_rate_by_task(kept))
    for k, value in zip(ks, paper.false_positive_rate_by_k(kept, ks), strict=True):
        if np.isfinite(value):
            ctx.record_point("paper_false_positive_rate_by_k", k, value)
    model = paper.fit_paper_two_types(counts)
    ctx.note("paper_two_type_model", model.__dict__)
    for k, value in zip(ks, paper.paper_two_type_utilities(model, 0.0, n), strict=True):
        ctx.record_point("paper_two_type_accuracy", k, value)
    for cost in ctx.config.costs:
        name = f"{cost:g}"
        best_k, best = paper.optimal_k_with_abstention(kept, cost, n)
        ctx.record(f"paper_optimal_k_cost_{name}", best_k)
        ctx.record(f"paper_utility_at_optimal_k_cost_{name}", best)
        best_k, best = paper.paper_two_type_optimal_k(model, cost, n)
        ctx.record(f"paper_two_type_optimal_k_cost_{name}", best_k)
        ctx.record(f"paper_two_type_utility_at_optimal_k_cost_{name}", best)


def _record_intervals(
    ctx: RunContext, counts: list[analysis.TaskCounts], n: int
) -> tuple[list[float], list[float]]:
    """95 % bootstrap intervals (`bootstrap.py`) as <metric>_lo / <metric>_hi; returns the
    resampling accuracy's band for the plot."""
    replicates, seed = ctx.config.bootstrap, ctx.seed
    boot = Bootstrap(counts, replicates, seed)
    kept = paper.false_negative_filter(counts)
    paper_boot = Bootstrap(kept, replicates, seed) if kept else boot
    per_replicate = {
        "pass_at_1_strong": boot.pass_at_k(1, strong=True),
        "pass_at_1_weak": boot.pass_at_k(1, strong=False),
        "pass_at_n_strong": boot.pass_at_k(n, strong=True),
        "resampling_ceiling": boot.ceiling(),
        "paper_conditional_accuracy": paper_boot.conditional_accuracy(),
    }
    for cost in ctx.config.costs:
        name = f"{cost:g}"
        for prefix, source, abstain in (("", boot, False), ("paper_", paper_boot, True)):
            k, value = source.optimal_k(cost, abstain)
            per_replicate[f"{prefix}optimal_k_cost_{name}"] = k
            per_replicate[f"{prefix}utility_at_optimal_k_cost_{name}"] = value
    for metric, values in per_replicate.items():
        interval = boot.interval(values)
        if np.isfinite(interval.low):  # not when no replicate defines it (no weak pass at all)
            ctx.record(f"{metric}_lo", interval.low)
            ctx.record(f"{metric}_hi", interval.high)
    accuracy = boot.resampling_accuracy()
    low, high = [], []
    for k in range(1, n + 1):
        interval = boot.interval(accuracy[:, k - 1])
        ctx.record_point("resampling_accuracy_lo", k, interval.low)
        ctx.record_point("resampling_accuracy_hi", k, interval.high)
        low.append(interval.low)
        high.append(interval.high)
    return low, high


def _plots(
    ctx: RunContext,
    label: str,
    ks: list[int],
    closed: list[float],
    simulated: list[float],
    model: list[float],
    ceiling: float,
    pass_1: float,
    utilities: dict[str, list[float]],
    band: tuple[list[float], list[float]],
) -> None:
    ctx.artifact_dir.mkdir(parents=True, exist_ok=True)
    horizontal = [(ceiling, "ceiling (k -> inf)"), (pass_1, "pass@1 of this source")]
    stronger = ctx.config.stronger_source_pass_at_1
    if stronger:
        horizontal.append((stronger, "stronger source, pass@1"))
    accuracy = save_line_plot(
        ctx.artifact_dir / "accuracy_vs_k.svg",
        [
            ("resampling, closed form", ks, closed),
            ("resampling, simulated", ks, simulated),
            ("two-type model", ks, model),
        ],
        title=f"Resampling accuracy vs k, {label}",
        y_label="accuracy (strong tests)",
        log_x=True,
        horizontal=horizontal,
        bands=[("resampling, 95 % bootstrap interval", ks, *band)],
    )
    ctx.save_artifact("accuracy_vs_k", accuracy, "image/svg+xml")
    utility = save_line_plot(
        ctx.artifact_dir / "utility_vs_k.svg",
        [(f"cost {name}", ks, values) for name, values in utilities.items()],
        title=f"Utility vs k per false-positive cost, {label}",
        y_label="reward per task",
        log_x=False,
    )
    ctx.save_artifact("utility_vs_k", utility, "image/svg+xml")


def _record_outcomes(ctx: RunContext, scored: list[Scored]) -> None:
    total = len(scored)
    for outcome in ("failed", "timeout", "error"):
        share = sum(1 for s in scored if s.verdict.outcome == outcome) / total
        ctx.record(f"share_{outcome}", share)


def _method_verifier(
    ctx: RunContext,
    method: Method,
    problem_list: list[problems.Problem],
    by_task: dict[str, list[Scored]],
) -> None:
    """Compare a method's own `verify(problem, program, run)` with the base (weak) tests."""
    verify = getattr(method.module, "verify", None)
    if not callable(verify):
        return
    run = method.new_run(ctx.seed, ctx.device)
    agree = total = 0
    counts = []
    for problem in problem_list:
        items = by_task.get(problem.task_id, [])
        judged = [bool(verify(problem, item.program, run)) for item in items]
        agree += sum(j == item.verdict.weak for j, item in zip(judged, items, strict=True))
        total += len(items)
        counts.append(
            analysis.TaskCounts(
                problem.task_id, tuple(judged), tuple(i.verdict.strong for i in items)
            )
        )
    ctx.record("method_verifier_agreement", agree / total if total else 0.0)
    ctx.record("method_verifier_ceiling", analysis.resampling_ceiling(counts))


def _save_verdicts(ctx: RunContext, scored: list[Scored]) -> None:
    ctx.artifact_dir.mkdir(parents=True, exist_ok=True)
    path = ctx.artifact_dir / "verdicts.jsonl"
    with path.open("w") as out:
        for item in sorted(scored, key=lambda s: (s.task_id, s.index)):
            record: dict[str, Any] = {
                "task_id": item.task_id,
                "sample": item.index,
                "weak": item.verdict.weak,
                "strong": item.verdict.strong,
                "outcome": item.verdict.outcome,
                "detail": item.verdict.detail,
            }
            out.write(json.dumps(record) + "\n")
    ctx.save_artifact("verdicts", path, "application/jsonl")
