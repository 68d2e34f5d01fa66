"""Task `verifiers`: inference scaling by resampling with imperfect verifiers, sandboxed.

After Stroebl, Kapoor & Narayanan, "Inference Scaling fLaws: The Limits of LLM Resampling with
Imperfect Verifiers" (weak verifier: HumanEval's base tests; ground truth: EvalPlus' extended
tests), Chen et al.'s unbiased pass@k and Brown et al.'s "Large Language Monkeys" (coverage vs.
samples).

A method is a *sample source*: `generate(problems, n, seed, run)` returns n complete programs per
problem. The harness owns everything else: the problems and their tests (`problems.py`), the
sandbox every program runs in (`sandbox.py`; untrusted code never runs in this process), the
verdicts (`verdicts.py`, decided here from the values the program returned) and the analysis
(`analysis.py`). A method may also define `verify(problem, program, run) -> bool`, its own verifier;
the task then reports how often it agrees with the base tests and its own resampling ceiling.

Sample sources shipped: `mutants` (the smoke default; SYNTHETIC programs made by mutating the
canonical solutions, labelled so in every note, metric and plot), `samples-file` (an EvalPlus
JSONL file, `--set samples=FILE.jsonl`, chosen automatically when that setting is given) and
`tasks/verifiers/methods/hf_sampler.py` (a causal LM through `transformers`:
`--method tasks/verifiers/methods/hf_sampler.py --set hp.model=DIR`).

Verifiers: with `strong_tests = "split"` (offline) the weak tests are the first `split_fraction`
of HumanEval's base test inputs and the strong tests all of them; with `humaneval-plus` or
`humaneval-plus-mini` (a mirror: `--data-dir DIR` with `DIR/code/HumanEvalPlus[-Mini].jsonl.gz`,
or EvalPlus' HUMANEVAL_OVERRIDE_PATH) the weak tests are the base tests and the strong tests base
+ plus inputs. `dataset = "mbpp"` / `"mbpp-full"` reads MBPP from a mirror, with
`strong_tests = "mbpp-plus"` for MBPP+ (`mbpp.py`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.base import GateResult, Method, Metric, RunContext, Task

COSTS = (0.0, 1.0, 2.0, 4.0, 8.0)
DATASETS = ("humaneval", "mbpp", "mbpp-full")


def _cost_name(cost: float) -> str:
    return f"{cost:g}"


@dataclass(frozen=True)
class VerifiersConfig:
    """One profile's settings (see suite/<version>/verifiers.toml)."""

    dataset: str = "humaneval"
    problems: int = 0
    """Use the first N problems (0: all)."""
    samples_per_problem: int = 10
    samples: str = field(default="", metadata={"identity": False})
    """An EvalPlus-format JSONL samples file (.jsonl or .jsonl.gz); when set, its programs are
    scored instead of a generating method's (the samples-file method is then the default). Its
    path is not part of the task-spec hash; its content is (`samples_sha256`)."""
    samples_sha256: str = ""
    """The samples file's SHA-256, filled in from the file (so a file with new content at the
    same path is a different task spec); when given, the file must have it."""
    missing_problems: str = "refuse"
    """A samples file that lacks problems of the profile: "refuse" (exit 2) or "fail" (each
    missing problem scores n failing samples; the quality gate still fails)."""
    strong_tests: str = "split"
    split_fraction: float = 0.5
    timeout_s: float = 60.0
    """Cap on one test phase's wall seconds (base inputs, then plus inputs): a phase gets
    min(timeout_s, the sum of its per-input limits) + 1 s (EvalPlus's EVALPLUS_TIMEOUT_PER_TASK)."""
    min_time_limit_s: float = 1.0
    """Per-input time limit floor (EvalPlus's --min-time-limit)."""
    time_limit_factor: float = 4.0
    """Per-input limit: this x the canonical solution's time (EvalPlus's --gt-time-limit-factor)."""
    find_zero: str = "evalplus-0.3.1"
    """HumanEval/32's oracle: "evalplus-0.3.1" (every sample fails, as in EvalPlus 0.3.1) or
    "property" (|poly(xs, x)| <= atol, as intended); see verdicts.py."""
    memory_mb: int = 1024
    workers: int = 2
    permutations: int = 200
    costs: list[float] = field(default_factory=lambda: list(COSTS))
    stronger_source_pass_at_1: float = 0.0
    """A stronger source's single-sample accuracy drawn on the accuracy plot (0: none)."""
    bootstrap: int = 1000
    """Bootstrap replicates (over tasks, and samples within a task) for the 95 % intervals."""

    def __post_init__(self) -> None:
        from tasks.verifiers.problems import STRONG_TESTS

        if self.dataset not in DATASETS:
            raise TypeError(f"dataset must be one of {DATASETS}")
        if self.strong_tests not in STRONG_TESTS:
            raise TypeError(f"strong_tests must be one of {STRONG_TESTS}")
        allowed = ("split", "mbpp-plus") if self.dataset.startswith("mbpp") else STRONG_TESTS[:-1]
        if self.strong_tests not in allowed:
            raise TypeError(f"strong_tests for dataset {self.dataset} must be one of {allowed}")
        if not 0.0 < self.split_fraction < 1.0:
            raise TypeError("split_fraction must be between 0 and 1")
        if self.samples_per_problem < 1 or self.problems < 0 or self.workers < 1:
            raise TypeError("samples_per_problem and workers must be positive, problems >= 0")
        if self.bootstrap < 10:
            raise TypeError("bootstrap must be at least 10 replicates")
        if self.timeout_s <= 0 or self.memory_mb < 64 or self.permutations < 1:
            raise TypeError("timeout_s must be positive, memory_mb >= 64, permutations >= 1")
        unknown = [c for c in self.costs if c not in COSTS]
        if unknown:
            raise TypeError(f"costs must be among {COSTS}")
        if self.min_time_limit_s <= 0 or self.time_limit_factor <= 0:
            raise TypeError("min_time_limit_s and time_limit_factor must be positive")
        if self.find_zero not in ("evalplus-0.3.1", "property"):
            raise TypeError('find_zero must be "evalplus-0.3.1" or "property"')
        if self.missing_problems not in ("refuse", "fail"):
            raise TypeError('missing_problems must be "refuse" or "fail"')
        self._pin_samples_file()

    def _pin_samples_file(self) -> None:
        """Fill `samples_sha256` from the file (or check it); a file that cannot be read is
        reported by `check_inputs`."""
        if not self.samples:
            if self.samples_sha256:
                raise TypeError("samples_sha256 is set but samples is not")
            return
        try:
            digest = file_sha256(Path(self.samples))
        except OSError:
            return
        if self.samples_sha256 and self.samples_sha256 != digest:
            raise TypeError(
                f"samples file {self.samples} has SHA-256 {digest[:16]}..., not the pinned"
                f" samples_sha256 {self.samples_sha256[:16]}..."
            )
        object.__setattr__(self, "samples_sha256", digest)


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes (a .gz file's compressed bytes: the file as it is)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_INTERVAL_METRICS = (
    ("pass_at_1_strong", "fraction", True),
    ("pass_at_1_weak", "fraction", True),
    ("pass_at_n_strong", "fraction", True),
    ("resampling_ceiling", "fraction", True),
    ("paper_conditional_accuracy", "fraction", True),
    *(
        (f"{prefix}{what}_cost_{_cost_name(c)}", unit, higher)
        for c in COSTS
        for prefix in ("", "paper_")
        for what, unit, higher in (
            ("optimal_k", "samples", False),
            ("utility_at_optimal_k", "reward/task", True),
        )
    ),
)
"""Scalars recorded with a 95 % bootstrap interval (`<name>_lo`, `<name>_hi`)."""


def _metrics() -> tuple[Metric, ...]:
    src = "of the run's sample source (SYNTHETIC when it is the mutation sampler)"
    scalars = (
        Metric("pass_at_1_strong", "fraction", True, f"pass@1 under the strong tests, {src}"),
        Metric("pass_at_1_weak", "fraction", True, f"pass@1 under the weak tests, {src}"),
        Metric("pass_at_n_strong", "fraction", True, f"coverage: pass@n, strong tests, {src}"),
        Metric("pass_at_n_weak", "fraction", True, f"pass@n under the weak tests, {src}"),
        Metric(
            "false_positive_rate",
            "fraction",
            False,
            f"worst case: P(fails strong | passes weak) pooled over weak-passing samples, {src}",
        ),
        *(
            Metric(f"pass_at_{k}_{v}", "fraction", True, f"pass@{k}, {v} tests (when n >= {k})")
            for k in (10, 100)
            for v in ("strong", "weak")
        ),
        Metric(
            "paper_conditional_accuracy",
            "fraction",
            True,
            f"paper: mean P(strong | weak) over tasks with a weak pass, FN-filtered, {src}",
        ),
        Metric(
            "paper_false_positive_rate_by_task",
            "fraction",
            False,
            f"paper: mean over tasks of P(fails strong | passes weak), FN-filtered, {src}",
        ),
        Metric(
            "paper_false_negative_tasks_dropped",
            "tasks",
            False,
            "paper: tasks its false-negative filter removed (its 14 HumanEval ids)",
        ),
        Metric(
            "optimal_k_capped_at_n",
            "costs",
            False,
            "costs whose worst-case k* equals n (the optimum may lie beyond the samples drawn)",
        ),
        Metric(
            "samples_file_skipped_lines", "lines", False, "samples-file lines skipped as unusable"
        ),
        Metric(
            "resampling_ceiling",
            "fraction",
            True,
            f"resampling accuracy as k -> infinity: mean P(strong | weak), {src}",
        ),
        Metric("resampling_accuracy_at_n", "fraction", True, f"resampling accuracy at k=n, {src}"),
        Metric(
            "two_type_ceiling", "fraction", True, f"ceiling of the fitted two-type model, {src}"
        ),
        Metric(
            "verifier_false_negative_tasks",
            "tasks",
            False,
            "tasks with samples that pass the strong tests but fail the weak ones (0 by"
            " construction when the strong tests include the weak ones: HumanEval+, a split)",
        ),
        *(
            Metric(
                f"optimal_k_cost_{_cost_name(c)}",
                "samples",
                False,
                f"k maximizing utility with false-positive cost {c:g}, {src}",
            )
            for c in COSTS
        ),
        *(
            Metric(
                f"utility_at_optimal_k_cost_{_cost_name(c)}",
                "reward/task",
                True,
                f"utility at k* with false-positive cost {c:g}, {src}",
            )
            for c in COSTS
        ),
        *(
            Metric(
                f"paper_{what}_cost_{_cost_name(c)}",
                unit,
                higher,
                f"paper: {text} with false-positive cost {c:g} (0: abstain), FN-filtered, {src}",
            )
            for c in COSTS
            for what, unit, higher, text in (
                ("optimal_k", "samples", False, "k*"),
                ("utility_at_optimal_k", "reward/task", True, "utility at k*"),
                ("two_type_optimal_k", "samples", False, "the two-type model's k*"),
                ("two_type_utility_at_optimal_k", "reward/task", True, "two-type utility at k*"),
            )
        ),
        *(
            Metric(
                f"{name}_{end}", unit, higher, f"{name}: {end} end of its 95 % bootstrap interval"
            )
            for name, unit, higher in _INTERVAL_METRICS
            for end in ("lo", "hi")
        ),
        Metric(
            "method_verifier_agreement",
            "fraction",
            True,
            "share of samples where the method's own verifier agrees with the weak tests",
        ),
        Metric(
            "method_verifier_ceiling",
            "fraction",
            True,
            "resampling ceiling with the method's own verifier in place of the weak tests",
        ),
        *(
            Metric(f"share_{o}", "fraction", False, f"share of samples whose outcome was {o}")
            for o in ("failed", "timeout", "error")
        ),
        Metric(
            "programs_per_s",
            "programs/s",
            True,
            "distinct sandboxed programs run per second (identical samples of a problem run once)",
        ),
        Metric("problems", "problems", True, "problems scored"),
        Metric(
            "problems_not_covered",
            "problems",
            False,
            "problems of the profile without samples (counted as failures) or whose tests could"
            " not be prepared (left out)",
        ),
        Metric("samples_per_problem", "samples", True, "n: samples scored per problem"),
    )
    curves = (
        Metric("pass_at_k_strong", "fraction", True, f"pass@k, strong tests, {src}", "samples"),
        Metric("pass_at_k_weak", "fraction", True, f"pass@k, weak tests, {src}", "samples"),
        Metric(
            "resampling_accuracy",
            "fraction",
            True,
            f"first weak-passing of k samples is correct (closed form), {src}",
            "samples",
        ),
        Metric(
            "resampling_accuracy_simulated",
            "fraction",
            True,
            f"the same by seeded permutations, {src}",
            "samples",
        ),
        Metric(
            "two_type_model_accuracy",
            "fraction",
            True,
            f"resampling accuracy of the fitted two-type model, {src}",
            "samples",
        ),
        *(
            Metric(
                f"resampling_accuracy_{end}",
                "fraction",
                True,
                f"resampling accuracy: {end} end of its 95 % bootstrap interval, {src}",
                "samples",
            )
            for end in ("lo", "hi")
        ),
        Metric(
            "paper_false_positive_rate_by_k",
            "fraction",
            False,
            f"paper: FPR of the first weak pass at position K, mean over tasks, {src}",
            "samples",
        ),
        Metric(
            "paper_two_type_accuracy",
            "fraction",
            True,
            f"paper's two-type model as written: accuracy (utility at cost 0) vs k, {src}",
            "samples",
        ),
        *(
            Metric(
                f"utility_cost_{_cost_name(c)}",
                "reward/task",
                True,
                f"utility vs k, false-positive cost {c:g}, {src}",
                "samples",
            )
            for c in COSTS
        ),
    )
    return scalars + curves


class VerifiersTask(Task):
    name = "verifiers"
    description = "Resampling with imperfect verifiers on HumanEval(+) or MBPP(+)."
    config_type = VerifiersConfig
    reference_methods = ("mutants",)
    supports_cuda = True
    headline_metrics = (
        "resampling_ceiling",
        "pass_at_1_strong",
        "pass_at_n_strong",
        "false_positive_rate",
        "optimal_k_cost_4",
        "programs_per_s",
    )
    metrics = _metrics()

    @classmethod
    def default_method(cls, config: Any) -> str:
        """A samples file is scored by the samples-file method; otherwise the mutants."""
        if getattr(config, "samples", ""):
            imported = str(config.samples).endswith(".json")
            return str(
                cls.methods_dir() / ("evalplus_results.py" if imported else "samples_file.py")
            )
        return cls.reference_methods[0]

    def check_method(self, method: Method, config: Any) -> None:
        reads_file = method.constants["READS_SAMPLES_FILE"]
        if config.samples and not reads_file:
            raise ValueError("--set samples=FILE is scored by the samples-file method only")
        if reads_file and not config.samples:
            raise ValueError("needs a samples file: --set samples=FILE.jsonl")
        imports = method.constants["IMPORTS_STATUSES"]
        if reads_file and imports != str(config.samples).endswith(".json"):
            raise ValueError(
                "an EvalPlus eval_results .json file is read by the evalplus-results method,"
                " a samples .jsonl[.gz] file by the samples-file method"
            )

    def check_inputs(self, config: Any, data_dir: Path | None) -> None:
        from tasks.verifiers import problems

        if config.dataset.startswith("mbpp"):
            _check_mbpp_files(config, data_dir)
            if config.samples:
                _check_samples(config, data_dir)
            return
        path = problems.plus_path(config.strong_tests, data_dir)
        if config.strong_tests != "split" and (path is None or not path.is_file()):
            expected = f"DIR/code/{problems.PLUS_FILES[config.strong_tests]}"
            raise ValueError(
                f"strong_tests={config.strong_tests} needs HumanEval+: --data-dir DIR with"
                f" {expected} (or HUMANEVAL_OVERRIDE_PATH); found {path or 'no --data-dir'}"
            )
        if config.samples:
            _check_samples(config, data_dir)

    def quality_gate(self, scalars: Mapping[str, float], config: Any) -> GateResult:
        if scalars.get("problems", 0) < 1:
            return GateResult(False, "no problem could be scored")
        missing = scalars.get("problems_not_covered", 0)
        if missing:
            return GateResult(
                False, f"{missing:g} problems of the profile were not scored from samples"
            )
        return GateResult(True)

    def run(self, ctx: RunContext, method: Method) -> None:
        from tasks.verifiers.workload import run_workload

        run_workload(ctx, method)


def _check_samples(config: Any, data_dir: Path | None) -> None:
    """The samples file must be readable and, unless `missing_problems = "fail"`, cover every
    problem of the profile."""
    from tasks.verifiers import problems, samples

    prompts = {p.task_id: p.prompt for p in problems.load(config, data_dir)[0]}
    path = Path(config.samples)
    try:
        if samples.is_evalplus_results(path):
            read = samples.read_evalplus_results(path, list(prompts))
        else:
            read = samples.read_samples(path, prompts)
    except samples.SamplesError as exc:
        raise ValueError(str(exc)) from exc
    if read.missing and config.missing_problems == "refuse":
        shown = ", ".join(read.missing[:3]) + (", ..." if len(read.missing) > 3 else "")
        raise ValueError(
            f"samples file {config.samples} lacks {len(read.missing)} of the profile's"
            f" {len(prompts)} problems ({shown}); --set missing_problems=fail scores them as"
            " failures"
        )


def _check_mbpp_files(config: Any, data_dir: Path | None) -> None:
    """MBPP needs its mirror file (DIR/code/...); MBPP+ its file or MBPP_OVERRIDE_PATH (which
    alone is enough: MBPP+ carries MBPP's asserts)."""
    from tasks.verifiers import mbpp

    base = mbpp.base_path(config.dataset, data_dir)
    has_base = base is not None and base.is_file()
    if config.strong_tests == "mbpp-plus":
        plus = mbpp.plus_path(data_dir)
        if plus is None or not plus.is_file():
            raise ValueError(
                f"strong_tests=mbpp-plus needs MBPP+: --data-dir DIR with DIR/code/{mbpp.PLUS_FILE}"
                f" (or MBPP_OVERRIDE_PATH); found {plus or 'no --data-dir'}"
            )
        if has_base or "MBPP_OVERRIDE_PATH" in os.environ:
            return
    if not has_base:
        raise ValueError(
            f"dataset={config.dataset} needs MBPP: --data-dir DIR with"
            f" DIR/code/{mbpp.BASE_FILES[config.dataset]}; found {base or 'no --data-dir'}"
        )
