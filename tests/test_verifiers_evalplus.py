"""The task's verdicts against EvalPlus's own `untrusted_check` (the `evalplus` test extra) on
hand-made programs, one rule of EvalPlus's comparison, time limit or oracle per case; and the
cross-check's comparison of two verdict files. Needs no dataset."""

from __future__ import annotations

import json

import pytest

from tasks.verifiers import crosscheck
from tasks.verifiers.problems import TestSuite
from tasks.verifiers.sandbox import Job, Limits, Sandbox, encode_value
from tasks.verifiers.verdicts import Judge, TimeLimits

CASES = {  # name: (function body returning from x, inputs, expected outputs, atol)
    "int equals float": ("return float(x)", [3], [3], 0.0),
    "gcd plus 5e-7 fails": ("return x + 5e-7", [5], [5], 0.0),
    "float within 1e-6": ("return x + 1e-7", [0.5], [0.5], 0.0),
    "float beyond 1e-6": ("return x + 1e-4", [0.5], [0.5], 0.0),
    "True equals 1": ("return 1", [0], [True], 0.0),
    "tuple is not list of floats": ("return (x, x)", [1.5], [[1.5, 1.5]], 0.0),
    "tuple is not list": ("return (x,)", [1], [[1]], 0.0),
    "tolerance kept after a float": (
        "return x if isinstance(x, float) else x + 1",
        [0.5, 10**9],
        [0.5, 10**9],
        0.0,
    ),
    "no tolerance without a float": ("return x + 1", [10**9], [10**9], 0.0),
    "problem atol on ints": ("return x + 1", [10**9], [10**9], 1e-6),
    "nan never equals": ("return float('nan')", [0], [float("nan")], 0.0),
    "raises": ("raise ValueError(x)", [1], [1], 0.0),
    "wrong after right": ("return 0", [0, 1], [0, 0], 0.0),
    "right": ("return [x, str(x)]", [1, 2], [[1, "1"], [2, "2"]], 0.0),
    "past the time limit": (
        "import time\n    time.sleep(1.6) if x else None\n    return x",
        [0, 1],
        [0, 1],
        0.0,
    ),
}


GUARDED = {  # name: a whole program whose f(1) must return 1; what EvalPlus's guard breaks
    "doctest.testmod() at load": "def f(x):\n    return x\n\nimport doctest\ndoctest.testmod()\n",
    "open() in the call": "def f(x):\n    open('out.txt', 'w').write('x')\n    return x\n",
    "os.getcwd() at load": "import os\nHERE = os.getcwd()\ndef f(x):\n    return x\n",
    "import resource": "import resource\ndef f(x):\n    return x\n",
    "input() raises OSError, not EOFError": (
        "def f(x):\n    try:\n        input()\n    except EOFError:\n        return x\n"
    ),
    "stdin reads raise": "import sys\nDATA = sys.stdin.read()\ndef f(x):\n    return x\n",
    "printing is fine": "print('hello')\ndef f(x):\n    print(x)\n    return x\n",
    "subprocess.Popen": (
        "import subprocess\ndef f(x):\n    subprocess.Popen(['true'])\n    return x\n"
    ),
}


def _program(body: str, entry_point: str = "f") -> str:
    return f"def {entry_point}(x):\n    {body}\n"


def _suite(name: str, inputs: list, expected: list, atol: float, entry: str = "f") -> TestSuite:
    encoded = tuple(encode_value([x]) for x in inputs)
    outputs = tuple(encode_value(e) for e in expected)
    return TestSuite(name, entry, encoded, outputs, outputs, atol, 0.0, (0.0,) * len(inputs))


def _ours(sandbox: Sandbox, code: str, suite: TestSuite, find_zero: str = "evalplus-0.3.1"):
    limits = TimeLimits()
    judge = Judge(suite, find_zero)
    job = Job(code, suite.entry_point, suite.inputs, timeout_s=limits.job_s(suite),
              time_limits=limits.per_input(suite), guard=True, judge=judge)  # fmt: skip
    return judge.verdict(sandbox.run(job))


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(Limits(memory_mb=512), workers=1) as box:
        yield box


@pytest.mark.parametrize("name", sorted(CASES))
def test_verdict_matches_evalplus_untrusted_check(sandbox, name):
    evalplus_eval = pytest.importorskip("evalplus.eval")
    body, inputs, expected, atol = CASES[name]
    code = _program(body)
    status, _ = evalplus_eval.untrusted_check(
        "humaneval", code, [[x] for x in inputs], "f", expected, atol, [0.0] * len(inputs),
        fast_check=True,
    )  # fmt: skip
    verdict = _ours(sandbox, code, _suite(name, inputs, expected, atol))
    assert verdict.weak == verdict.strong == (status == "pass"), (verdict, status)


def test_find_zero_fails_as_in_evalplus_0_3_1_unless_the_property_is_asked_for(sandbox):
    evalplus_eval = pytest.importorskip("evalplus.eval")
    code = "def find_zero(xs):\n    return -xs[0] / xs[1]\n"
    inputs, expected = [[[1.0, 2.0]]], [-0.5]
    status, _ = evalplus_eval.untrusted_check(
        "humaneval", code, inputs, "find_zero", expected, 1e-4, [0.0], fast_check=True
    )
    suite = TestSuite("fz", "find_zero", (encode_value([[1.0, 2.0]]),), (encode_value(-0.5),),
                      (encode_value(-0.5),), 1e-4, 0.0, (0.0,))  # fmt: skip
    assert status == "fail"  # EvalPlus 0.3.1 records no pass for its special oracle
    assert not _ours(sandbox, code, suite).strong
    assert _ours(sandbox, code, suite, "property").strong


def test_first_failure_stops_the_job_before_the_remaining_inputs(sandbox):
    """A program that fails its first input and would then sleep is stopped at once."""
    code = _program("import time\n    time.sleep(0.9) if x else None\n    return -1")
    suite = _suite("stop", list(range(20)), list(range(20)), 0.0)
    job = Job(code, "f", suite.inputs, timeout_s=60.0, judge=Judge(suite))
    execution = sandbox.run(job)
    assert execution.wall_s < 5.0
    assert job.judge.verdict(execution).outcome == "failed"


def test_large_outputs_compare_by_digest_as_equal_values_do(sandbox):
    """An output too large to send whole comes back as a digest that equal values share."""
    big = 200_000
    canonical = _program("return [i / 1 if i % 2 else i for i in range(x)]")
    suite_run = sandbox.run(Job(canonical, "f", (encode_value([big]),), timeout_s=60.0))
    expected = suite_run.results[0][1]
    assert expected.startswith("H")
    suite = TestSuite("big", "f", (encode_value([big]),), (expected,), (expected,), 0.0, 0.0,
                      (0.0,))  # fmt: skip
    assert _ours(sandbox, _program("return list(range(x))"), suite).strong
    assert not _ours(sandbox, _program("return list(range(1, x + 1))"), suite).strong
    # ints too long to print in linear time (HumanEval/83's 18 * 10 ** (n - 2), n up to 10**6)
    huge = sandbox.run(Job(_program("return 18 * 10 ** (x - 2)"), "f", (encode_value([10**5]),)))
    assert huge.results[0][1].startswith("H")
    suite = TestSuite("huge", "f", (encode_value([10**5]),), (huge.results[0][1],),
                      (huge.results[0][1],), 0.0, 0.0, (0.0,))  # fmt: skip
    assert _ours(sandbox, _program("return int('18' + '0' * (x - 2))"), suite).strong
    assert not _ours(sandbox, _program("return 18 * 10 ** (x - 2) + 1"), suite).strong


def test_crosscheck_lists_every_disagreement_with_both_reasons(tmp_path):
    results = {"eval": {"HumanEval/0": [
        {"base_status": "pass", "plus_status": "pass", "base_fail_tests": []},
        {"base_status": "pass", "plus_status": "fail", "base_fail_tests": []},
        {"base_status": "fail", "plus_status": "pass", "base_fail_tests": [[1, 2]]},
    ]}}  # fmt: skip
    (tmp_path / "eval.json").write_text(json.dumps(results))
    lines = [
        {"task_id": "HumanEval/0", "sample": 0, "weak": True, "strong": True, "outcome":
         "passed", "detail": ""},
        {"task_id": "HumanEval/0", "sample": 1, "weak": True, "strong": True, "outcome":
         "passed", "detail": ""},
    ]  # fmt: skip
    (tmp_path / "verdicts.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    agreement = crosscheck.compare(
        crosscheck.read_verdicts(tmp_path / "verdicts.jsonl"),
        crosscheck.read_evalplus(tmp_path / "eval.json"),
    )
    assert agreement.samples == 3
    assert agreement.base_agree == 3  # sample 2: EvalPlus base fail, and the task never scored it
    assert agreement.plus_agree == 2
    assert len(agreement.disagreements) == 1
    assert "HumanEval/0 #1" in agreement.disagreements[0]
    assert "plus fail" in agreement.disagreements[0]
    assert agreement.pass_at_1["evalplus_plus"] == pytest.approx(1 / 3)


def test_annotations_are_evaluated_as_in_evalplus(sandbox):
    """`List` without `from typing import List` fails to load in EvalPlus; it must here too
    (the child's own `from __future__ import annotations` must not reach the candidate)."""
    evalplus_eval = pytest.importorskip("evalplus.eval")
    code = "def f(x: List[int]) -> int:\n    return x\n"
    status, _ = evalplus_eval.untrusted_check("humaneval", code, [[1]], "f", [1], 0.0, [0.0])
    assert status == "fail"
    verdict = _ours(sandbox, code, _suite("annotations", [1], [1], 0.0))
    assert not verdict.weak and verdict.outcome == "error"


@pytest.mark.parametrize("name", sorted(GUARDED))
def test_reliability_guard_verdicts_match_evalplus(sandbox, name):
    """EvalPlus's `reliability_guard` sets `open`, `os.getcwd`, `subprocess.Popen`... to None
    and makes stdin unreadable before a candidate loads; a candidate that uses them fails there
    (GPT-3.5's HumanEval/51 #4 calls `doctest.testmod()`, whose Pdb opens ~/.pdbrc), so the
    task's candidate jobs apply the same rule."""
    evalplus_eval = pytest.importorskip("evalplus.eval")
    code = GUARDED[name]
    status, _ = evalplus_eval.untrusted_check(
        "humaneval", code, [[1]], "f", [1], 0.0, [0.0], fast_check=True
    )
    verdict = _ours(sandbox, code, _suite(name, [1], [1], 0.0))
    assert verdict.weak == verdict.strong == (status == "pass"), (verdict, status)


def test_the_guard_applies_to_candidate_jobs_only(sandbox):
    """Without `guard` (the harness's own reference runs, the sandbox's tests) `open` and
    doctest work; with it they fail, as in EvalPlus, whatever EvalPlus is installed or not."""
    suite = _suite("guard", [1], [1], 0.0)
    code = GUARDED["doctest.testmod() at load"]
    assert sandbox.run(Job(code, "f", suite.inputs)).results == (("ok", encode_value(1)),)
    assert not _ours(sandbox, code, suite).weak
    assert _ours(sandbox, GUARDED["printing is fine"], suite).strong
