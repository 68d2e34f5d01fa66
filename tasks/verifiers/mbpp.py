"""MBPP (Austin et al. 2021) and MBPP+ (EvalPlus) as `Problem`s, read from a local mirror.

MBPP has no `check(candidate)` and no entry point, so both are made here and the rest is
HumanEval's machinery (`problems.prepare_tests`): the task's `test_list` asserts become a
`check(candidate)` that rebinds the function's name to `candidate`, so recording it with the
reference solution yields the base inputs; the entry point is the function of the reference code
that the first assert calls. Expected outputs are the reference's return values (computed in
the sandbox), compared exactly (floats within tolerance): stricter than an assert such as
`set(f(x)) == set(y)`, as with HumanEval.

Files (`DIR/code/...` of `--data-dir DIR`, the layout of budgetbench's data mirror):
- `sanitized-mbpp.json` (dataset `mbpp`, 427 tasks) or `mbpp.jsonl` (dataset `mbpp-full`, 974);
- MBPP+ plus inputs (`strong_tests = "mbpp-plus"`): EvalPlus' override variable
  `MBPP_OVERRIDE_PATH`, else `MbppPlus-dev-767efcc.jsonl.gz` (the last MbppPlus.jsonl committed to
  evalplus before its v0.1.0 release; 399 tasks). Its inputs are JSON, so tuples and sets arrive
  as lists: they are given the types of the recorded base inputs (`problems.conform_inputs`).
  With MBPP+, the weak tests expect MBPP's original solution's outputs and the strong tests
  EvalPlus' (corrected) canonical solution's. Without the MBPP file (only the override set),
  MBPP+'s own `assertion` and canonical solution stand in for it.

Task ids are EvalPlus' (`Mbpp/2`), so EvalPlus samples files are scored as they are.
"""

from __future__ import annotations

import ast
import dataclasses
import gzip
import json
import os
import re
import textwrap
from pathlib import Path

from tasks.verifiers.problems import Problem
from tasks.verifiers.sandbox import encode_value

BASE_FILES = {"mbpp": "sanitized-mbpp.json", "mbpp-full": "mbpp.jsonl"}
PLUS_FILE = "MbppPlus-dev-767efcc.jsonl.gz"


def base_path(dataset: str, data_dir: Path | None) -> Path | None:
    return None if data_dir is None else data_dir / "code" / BASE_FILES[dataset]


def plus_path(data_dir: Path | None) -> Path | None:
    """Where MBPP+ is read from: EvalPlus' MBPP_OVERRIDE_PATH, else the mirror."""
    override = os.environ.get("MBPP_OVERRIDE_PATH")
    if override:
        return Path(override)
    return None if data_dir is None else data_dir / "code" / PLUS_FILE


def load(dataset: str, data_dir: Path | None, plus: bool) -> tuple[list[Problem], dict[str, str]]:
    """The problems in file order, and task_id -> why a task could not be made a problem."""
    skipped: dict[str, str] = {}
    path = base_path(dataset, data_dir)
    base: list[Problem] = []
    if path is not None and path.is_file():
        for record in _read_records(path):
            task_id = f"Mbpp/{record['task_id']}"
            imports = list(record.get("test_imports") or [])
            setup = record.get("test_setup_code") or ""
            text = record.get("prompt") or record.get("text") or ""
            made = make_problem(task_id, text, record["code"], record["test_list"], imports, setup)
            if isinstance(made, str):
                skipped[task_id] = made
            else:
                base.append(made)
    if not plus:
        return base, skipped
    plus_records = _read_records(plus_path(data_dir))  # type: ignore[arg-type]
    if path is None or not path.is_file():
        return _plus_only(plus_records, skipped), skipped
    by_id = {record["task_id"]: record for record in plus_records}
    attached = []
    for problem in base:
        record = by_id.get(problem.task_id)
        if record is None:
            skipped[problem.task_id] = "not in MBPP+"
        else:
            attached.append(_with_plus(problem, record))
    return attached, skipped


def make_problem(
    task_id: str, text: str, code: str, tests: list[str], imports: list[str], setup: str = ""
) -> Problem | str:
    """A Problem from an MBPP record, or why it cannot be one."""
    code = code.replace("\r\n", "\n").replace("\t", "    ")
    if not tests:
        return "no test asserts"
    entry_point = _entry_point(code, tests[0])
    if entry_point is None:
        return "the first assert calls no function the reference code defines"
    body = "\n".join([f"{entry_point} = candidate", *(t.replace("\r\n", "\n") for t in tests)])
    head = "\n".join([*imports, setup.replace("\r\n", "\n")]).strip()
    test = f"{head}\n\n\ndef check(candidate):\n{textwrap.indent(body, '    ')}\n"
    prompt = f'"""\n{text.strip()}\n{tests[0].strip()}\n"""\n'
    return Problem(task_id, prompt, entry_point, code.rstrip() + "\n", test)


def _entry_point(code: str, first_test: str) -> str | None:
    """The function defined by the code that the first assert calls first."""
    names = re.findall(r"^def\s+(\w+)\s*\(", code, flags=re.MULTILINE)
    calls = [(m.start(), name) for name in names if (m := re.search(rf"\b{name}\s*\(", first_test))]
    return min(calls)[1] if calls else None


def _with_plus(problem: Problem, record: dict) -> Problem:
    """MBPP+'s plus inputs, tolerance and canonical solution; MBPP's asserts stay the weak tests,
    and MBPP's original solution the program they expect."""
    return Problem(
        problem.task_id,
        problem.prompt,
        problem.entry_point,
        record["canonical_solution"].lstrip("\n"),
        problem.test,
        plus_inputs=tuple(encode_value(list(arguments)) for arguments in record["plus_input"]),
        atol=float(record.get("atol") or 0.0),
        weak_reference=problem.canonical_program,
        conform_plus=True,
    )


def _plus_only(records: list[dict], skipped: dict[str, str]) -> list[Problem]:
    """Problems from MBPP+ alone (MBPP_OVERRIDE_PATH without the MBPP file): its `assertion`
    (MBPP's asserts as EvalPlus keeps them) are the base tests, its canonical solution the
    reference for both verifiers."""
    result = []
    for record in records:
        text = record["prompt"].strip().strip("'\"").strip()
        imports, tests = _split_statements(record.get("assertion", ""))
        made = make_problem(record["task_id"], text, record["canonical_solution"], tests, imports)
        if isinstance(made, str):
            skipped[record["task_id"]] = made
        else:
            result.append(dataclasses.replace(_with_plus(made, record), weak_reference=""))
    return result


def _split_statements(source: str) -> tuple[list[str], list[str]]:
    """The import statements and the other statements (the asserts) of a test script."""
    try:
        statements = ast.parse(source).body
    except SyntaxError:
        return [], []
    imports, tests = [], []
    for statement in statements:
        text = ast.get_source_segment(source, statement) or ""
        (imports if isinstance(statement, ast.Import | ast.ImportFrom) else tests).append(text)
    return imports, tests


def _read_records(path: Path) -> list[dict]:
    """A JSON array (sanitized MBPP) or JSON Lines, optionally gzipped."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        text = handle.read()
    if text.lstrip().startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]
