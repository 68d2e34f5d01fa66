"""MBPP / MBPP+ through the verifiers task, from a hand-written mirror in tmp_path."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest

from harness.errors import InputError
from harness.run.machine import collect_fingerprint
from harness.run.runner import execute, prepare, save_machine
from harness.store import open_store
from tasks.base import MethodRun
from tasks.verifiers import mbpp, problems
from tasks.verifiers.methods import mutants
from tasks.verifiers.sandbox import encode_value, parse_value

ADD_TUPLE = "def add_tuple(t, x):\n  return t + (x,)"
BUGGY_PRIME = "def is_not_prime(n):\n  return n % 2 == 0"
FIXED_PRIME = (
    "import math\ndef is_not_prime(n):\n"
    "    return any(n % i == 0 for i in range(2, math.isqrt(n) + 1))\n"
)
SANITIZED = [
    {
        "task_id": 2,
        "prompt": "Append an element to a tuple.",
        "code": ADD_TUPLE,
        "test_imports": [],
        "test_list": [
            "assert add_tuple((1, 2), 3) == (1, 2, 3)",
            "assert add_tuple((), 0) == (0,)",
        ],
    },
    {
        "task_id": 3,
        "prompt": "Write a python function to identify non-prime numbers.",
        "code": BUGGY_PRIME,
        "test_imports": ["import math"],
        "test_list": [
            "assert math.isclose(is_not_prime(4), True)",
            "assert is_not_prime(10) == True",
            "assert is_not_prime(7) == False",
        ],
    },
    {
        "task_id": 4,
        "prompt": "A record whose asserts call a function its code does not define.",
        "code": "def helper(x):\n  return x",
        "test_imports": [],
        "test_list": ["assert missing(1) == 1"],
    },
]
PLUS = [
    {  # JSON has no tuples: the plus inputs arrive as lists and must become tuples again
        "task_id": "Mbpp/2",
        "prompt": "'''\nAppend an element to a tuple.\n'''",
        "entry_point": "add_tuple",
        "canonical_solution": "\n" + ADD_TUPLE + "\n",
        "base_input": [[[1, 2], 3], [[], 0]],
        "plus_input": [[[5, 6, 7], 8], [[9], 1]],
        "atol": "0",
        "assertion": "\nassert add_tuple((1, 2), 3) == (1, 2, 3)\n",
    },
    {  # EvalPlus' fix of a wrong reference; isqrt(-1) raises, so that input is dropped
        "task_id": "Mbpp/3",
        "prompt": "'''\nWrite a python function to identify non-prime numbers.\n'''",
        "entry_point": "is_not_prime",
        "canonical_solution": "\n" + FIXED_PRIME,
        "base_input": [[4], [10], [7]],
        "plus_input": [[9], [15], [-1]],
        "atol": "0",
        "assertion": "import math\n\nassert math.isclose(is_not_prime(4), True)\n",
    },
]


@pytest.fixture()
def mirror(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.delenv("MBPP_OVERRIDE_PATH", raising=False)
    code = tmp_path / "mirror" / "code"
    code.mkdir(parents=True)
    (code / mbpp.BASE_FILES["mbpp"]).write_text(json.dumps(SANITIZED))
    with gzip.open(code / mbpp.PLUS_FILE, "wt") as out:
        out.write("".join(json.dumps(record) + "\n" for record in PLUS))
    return tmp_path / "mirror"


def test_mbpp_records_become_problems_with_a_check_and_an_entry_point(mirror):
    loaded, skipped = mbpp.load("mbpp", mirror, plus=False)
    assert [p.task_id for p in loaded] == ["Mbpp/2", "Mbpp/3"]
    assert skipped == {"Mbpp/4": "the first assert calls no function the reference code defines"}
    prime = loaded[1]
    assert prime.entry_point == "is_not_prime"
    assert "import math" in prime.test and "    is_not_prime = candidate" in prime.test
    assert prime.canonical_program.startswith('"""\nWrite a python function')
    with_plus, _ = mbpp.load("mbpp", mirror, plus=True)
    assert with_plus[1].weak_program.endswith(BUGGY_PRIME + "\n")
    assert "math.isqrt" in with_plus[1].canonical_program
    assert [parse_value(text) for text in with_plus[0].plus_inputs] == PLUS[0]["plus_input"]


def test_mbpp_plus_alone_through_the_override_variable(mirror, monkeypatch):
    monkeypatch.setenv("MBPP_OVERRIDE_PATH", str(mirror / "code" / mbpp.PLUS_FILE))
    loaded, _ = mbpp.load("mbpp", None, plus=True)
    assert [p.entry_point for p in loaded] == ["add_tuple", "is_not_prime"]
    assert loaded[1].weak_program == loaded[1].canonical_program
    assert loaded[1].test.startswith("import math\n") and "import" not in loaded[1].prompt
    prepare("verifiers", None, "smoke", "cpu", ["dataset=mbpp", "strong_tests=mbpp-plus"])


def test_json_plus_inputs_take_the_types_of_the_recorded_base_input():
    template = [((1, 2), (3, 4)), {"a": (1,)}, {1, 2}, 1j]
    plus = (encode_value([[[5, 6], [7, 8], [9, 10]], {"b": [2, 3]}, [3], "2+1j"]),)
    (conformed,) = problems.conform_inputs(plus, template)
    assert parse_value(conformed) == [((5, 6), (7, 8), (9, 10)), {"b": (2, 3)}, {3}, 2 + 1j]
    unhashable = (encode_value([[[1]], {}, [[1]], 0]),)
    assert problems.conform_inputs(unhashable, template) == unhashable


def test_missing_mbpp_files_are_one_line_input_errors(mirror, tmp_path):
    with pytest.raises(InputError, match=r"needs MBPP: --data-dir DIR with DIR/code/mbpp\.jsonl"):
        prepare("verifiers", None, "smoke", "cpu", ["dataset=mbpp-full"], data_dir=mirror)
    (mirror / "code" / mbpp.PLUS_FILE).unlink()
    with pytest.raises(InputError, match=r"MbppPlus-dev-767efcc\.jsonl\.gz .*found .*mirror"):
        prepare(
            "verifiers",
            None,
            "smoke",
            "cpu",
            ["dataset=mbpp", "strong_tests=mbpp-plus"],
            None,
            mirror,
        )
    with pytest.raises(InputError, match="strong_tests for dataset mbpp must be one of"):
        prepare("verifiers", None, "smoke", "cpu", ["dataset=mbpp", "strong_tests=humaneval-plus"])


def test_mutation_sampler_mutates_mbpp_reference_solutions(mirror):
    loaded, _ = mbpp.load("mbpp", mirror, plus=True)
    run = MethodRun(mutants.HYPERPARAMETERS, seed=0, device="cpu")
    programs = mutants.generate(loaded, 12, 0, run)["Mbpp/3"]
    assert any(p != loaded[1].canonical_program for p in programs)
    mutated = mutants.mutate(loaded[1].prompt, loaded[1].canonical_solution, random.Random(1))
    assert "def is_not_prime" in mutated and "identify non-prime numbers" in mutated


def test_mbpp_plus_run_scores_weak_and_strong_tests(mirror, sqlite_url, tmp_path, monkeypatch):
    """The buggy original prime test passes MBPP's asserts but not MBPP+'s input 9."""
    prompts = {p.task_id: p.prompt for p in mbpp.load("mbpp", mirror, plus=True)[0]}
    samples = [
        ("Mbpp/2", ADD_TUPLE),
        ("Mbpp/2", "def add_tuple(t, x):\n  return t"),
        ("Mbpp/3", FIXED_PRIME),
        ("Mbpp/3", BUGGY_PRIME),
    ]
    path = tmp_path / "samples.jsonl"
    path.write_text(
        "".join(json.dumps({"task_id": t, "solution": prompts[t] + c}) + "\n" for t, c in samples)
    )
    monkeypatch.setenv("BUDGETBENCH_CACHE_DIR", str(tmp_path / "cache"))
    overrides = ["dataset=mbpp", "strong_tests=mbpp-plus", f"samples={path}", "permutations=10"]
    prepared = prepare("verifiers", None, "smoke", "cpu", overrides, data_dir=mirror)
    store = open_store(sqlite_url)
    (outcome,) = execute(store, prepared, [0], save_machine(store, collect_fingerprint()))
    assert outcome.status == "succeeded", outcome.error
    scalars = {name: value for name, (value, _unit) in outcome.scalars.items()}
    assert scalars["problems"] == 2 and scalars["samples_per_problem"] == 2
    assert scalars["pass_at_1_weak"] == pytest.approx(0.75)
    assert scalars["pass_at_1_strong"] == pytest.approx(0.5)
    assert scalars["false_positive_rate"] == pytest.approx(1 / 3)
    from harness.store.queries import get_run

    with open_store(sqlite_url).session() as session:
        notes = get_run(session, outcome.run_id).provenance["task_notes"]
    assert set(notes["problems_not_loaded"]) == {"Mbpp/4"}
    assert notes["tests"] == {"weak_inputs": 5, "strong_inputs": 9}
    assert notes["reference_failed_inputs_dropped"] == 1
    assert notes["problems_skipped"] == {}
