"""The verifiers task end to end through the harness, samples files and bad input."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from harness.errors import InputError
from harness.run.machine import collect_fingerprint
from harness.run.runner import execute, prepare, save_machine
from harness.store import open_store
from tasks.base import MethodRun
from tasks.verifiers import problems, samples
from tasks.verifiers.methods import mutants

FEW = ["problems=4", "samples_per_problem=4", "permutations=20", "timeout_s=2.0"]


def _run(sqlite_url: str, overrides: list[str], tmp_path: Path, monkeypatch):
    monkeypatch.setenv("BUDGETBENCH_CACHE_DIR", str(tmp_path / "cache"))
    store = open_store(sqlite_url)
    prepared = prepare("verifiers", None, "smoke", "cpu", overrides)
    machine_id = save_machine(store, collect_fingerprint())
    (outcome,) = execute(store, prepared, [0], machine_id)
    return prepared, outcome


def test_smoke_sized_run_stores_measurements_curves_and_plots(sqlite_url, tmp_path, monkeypatch):
    prepared, outcome = _run(sqlite_url, FEW, tmp_path, monkeypatch)
    assert prepared.method.name == "mutants"
    assert outcome.status == "succeeded", outcome.error
    scalars = {name: value for name, (value, _unit) in outcome.scalars.items()}
    assert scalars["problems"] == 4 and scalars["samples_per_problem"] == 4
    assert 0.0 <= scalars["pass_at_1_strong"] <= scalars["pass_at_1_weak"] <= 1.0
    assert scalars["resampling_accuracy_at_n"] == pytest.approx(scalars["resampling_ceiling"])
    assert scalars["programs_per_s"] > 0
    from harness.api import show
    from harness.store.queries import get_run
    from tasks.verifiers import compare

    with open_store(sqlite_url).session() as session:
        run = get_run(session, outcome.run_id)
        curves = {point.metric for point in run.curve_points}
        artifacts = {artifact.name for artifact in run.artifacts}
        notes = run.provenance["task_notes"]
    shown = show(outcome.run_id, db=sqlite_url)  # compare reads runs as `show --json` prints them
    plot = compare.draw([shown], tmp_path / "compare.svg").read_text()
    assert "95 % interval" in plot and "pass@1 (single sample)" in plot
    assert {"pass_at_k_strong", "resampling_accuracy", "utility_cost_8"} <= curves
    assert {"resampling_accuracy_lo", "paper_two_type_accuracy"} <= curves
    assert scalars["pass_at_1_strong_lo"] <= scalars["pass_at_1_strong"]
    assert scalars["pass_at_1_strong"] <= scalars["pass_at_1_strong_hi"]
    assert artifacts == {"accuracy_vs_k", "utility_vs_k", "verdicts"}
    assert notes["sample_source"].startswith("SYNTHETIC")


def test_samples_file_is_scored_and_bad_lines_are_skipped(sqlite_url, tmp_path, monkeypatch):
    humaneval = {p.task_id: p for p in problems.load_humaneval()}
    good = [humaneval["HumanEval/0"], humaneval["HumanEval/1"]]
    lines = []
    for problem in good:
        lines.append(
            json.dumps({"task_id": problem.task_id, "solution": problem.canonical_program})
        )
        lines.append(json.dumps({"task_id": problem.task_id, "completion": "    return None\n"}))
    lines.insert(1, "{not json")
    lines.append(json.dumps({"task_id": "HumanEval/9999", "completion": "pass"}))
    lines.append(json.dumps({"task_id": "HumanEval/0"}))
    path = tmp_path / "samples.jsonl"
    path.write_bytes(
        "\n".join(lines).encode() + b'\n{"task_id": "HumanEval/1", "solution": "\xff\xfe"}\n\n'
    )
    prepared, outcome = _run(
        sqlite_url, [f"samples={path}", "problems=2", "permutations=10"], tmp_path, monkeypatch
    )
    assert prepared.method.name == "samples-file"
    assert outcome.status == "succeeded", outcome.error
    scalars = {name: value for name, (value, _unit) in outcome.scalars.items()}
    assert scalars["samples_per_problem"] == 2
    assert scalars["pass_at_1_strong"] == pytest.approx(0.5)
    assert scalars["pass_at_n_strong"] == pytest.approx(1.0)
    from harness.store.queries import get_run

    with open_store(sqlite_url).session() as session:
        notes = get_run(session, outcome.run_id).provenance["task_notes"]["samples_file"]
    assert notes["skipped_lines"] == 4
    assert notes["skipped_examples"] == [
        "line 2: not JSON (Expecting property name enclosed in double quotes)",
        "line 6: unknown task_id 'HumanEval/9999'",
        "line 7: no string 'solution' or 'completion'",
        "line 8: not UTF-8 (byte 40)",
    ]


def test_unusable_samples_file_is_one_line_input_error(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"task_id": "nope", "completion": "x"}\nnot json\n')
    with pytest.raises(InputError, match=r"has no usable sample \(first problem: line 1"):
        prepare("verifiers", None, "smoke", "cpu", [f"samples={path}"])
    with pytest.raises(InputError, match="does not exist"):
        prepare("verifiers", None, "smoke", "cpu", [f"samples={tmp_path / 'missing.jsonl'}"])


def test_plus_tests_without_a_mirror_fail_before_the_run(monkeypatch):
    monkeypatch.delenv("HUMANEVAL_OVERRIDE_PATH", raising=False)
    with pytest.raises(InputError, match=r"HumanEvalPlus-Mini\.jsonl\.gz"):
        prepare("verifiers", None, "standard", "cpu")


def test_samples_file_reader_cuts_every_task_to_the_smallest_count(tmp_path):
    path = tmp_path / "s.jsonl"
    records = [{"task_id": "a", "solution": str(i)} for i in range(3)]
    records += [{"task_id": "b", "completion": "x"}]
    path.write_text("\n".join(json.dumps(r) for r in records))
    read = samples.read_samples(path, {"a": "", "b": "P:"})
    assert read.programs == {"a": ["0", "1", "2"], "b": ["P:x"]}
    assert samples.equal_counts(read.programs) == ({"a": ["0"], "b": ["P:x"]}, 1)


def test_mutation_sampler_is_seeded_and_mutates_only_the_solution():
    problem = problems.load_humaneval()[0]
    run = MethodRun(mutants.HYPERPARAMETERS, seed=7, device="cpu")
    first = mutants.generate([problem], 20, 7, run)[problem.task_id]
    assert first == mutants.generate([problem], 20, 7, run)[problem.task_id]
    assert first != mutants.generate([problem], 20, 8, run)[problem.task_id]
    mutated = mutants.mutate(problem.prompt, problem.canonical_solution, random.Random(0))
    assert mutated != problem.canonical_program
    assert "def has_close_elements" in mutated and "Check if in given list" in mutated


def test_a_methods_own_verifier_is_compared_with_the_base_tests(sqlite_url, tmp_path, monkeypatch):
    """A verifier that accepts everything submits the first sample: its ceiling is pass@1."""
    method = tmp_path / "accept_all.py"
    method.write_text(
        "from tasks.verifiers.methods.mutants import HYPERPARAMETERS, generate  # noqa: F401\n"
        "\n\ndef verify(problem, program, run):\n    return True\n"
    )
    monkeypatch.setenv("BUDGETBENCH_CACHE_DIR", str(tmp_path / "cache"))
    store = open_store(sqlite_url)
    prepared = prepare("verifiers", str(method), "smoke", "cpu", FEW)
    (outcome,) = execute(store, prepared, [0], save_machine(store, collect_fingerprint()))
    assert outcome.status == "succeeded", outcome.error
    scalars = {name: value for name, (value, _unit) in outcome.scalars.items()}
    assert scalars["method_verifier_ceiling"] == pytest.approx(scalars["pass_at_1_strong"])
    assert scalars["method_verifier_agreement"] == pytest.approx(scalars["pass_at_1_weak"])


def test_samples_file_method_and_setting_go_together(tmp_path):
    samples_method = str(Path(mutants.__file__).with_name("samples_file.py"))
    with pytest.raises(InputError, match="needs a samples file"):
        prepare("verifiers", samples_method, "smoke", "cpu")
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps({"task_id": "HumanEval/0", "completion": "    return True\n"}))
    with pytest.raises(InputError, match="scored by the samples-file method only"):
        prepare("verifiers", "mutants", "smoke", "cpu", [f"samples={path}"])


def _canonical_lines(task_ids: list[str], copies: int = 2) -> str:
    humaneval = {p.task_id: p for p in problems.load_humaneval()}
    return "".join(
        json.dumps({"task_id": t, "solution": humaneval[t].canonical_program}) + "\n"
        for t in task_ids
        for _ in range(copies)
    )


def test_identical_samples_run_once_and_share_their_verdict(sqlite_url, tmp_path, monkeypatch):
    humaneval = {p.task_id: p for p in problems.load_humaneval()}
    wrong = {"completion": "    return None\n"}
    lines = [  # HumanEval/0: 3 right copies, 1 wrong; HumanEval/1: 2 wrong copies, 2 right
        *[{"solution": humaneval["HumanEval/0"].canonical_program}] * 3, wrong,
        wrong, wrong, *[{"solution": humaneval["HumanEval/1"].canonical_program}] * 2,
    ]  # fmt: skip
    path = tmp_path / "copies.jsonl"
    records = ({"task_id": f"HumanEval/{i // 4}", **line} for i, line in enumerate(lines))
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    overrides = [f"samples={path}", "problems=2", "permutations=10"]
    _, outcome = _run(sqlite_url, overrides, tmp_path, monkeypatch)
    assert outcome.status == "succeeded", outcome.error
    scalars = {name: value for name, (value, _unit) in outcome.scalars.items()}
    assert scalars["pass_at_1_strong"] == pytest.approx((3 / 4 + 2 / 4) / 2)
    from harness.store.queries import get_run

    with open_store(sqlite_url).session() as session:
        run = get_run(session, outcome.run_id)
        notes = run.provenance["task_notes"]
        (verdicts,) = [a for a in run.artifacts if a.name == "verdicts"]
        text = Path(verdicts.uri.removeprefix("file://")).read_text()
    rows = [json.loads(line) for line in text.splitlines()]
    assert notes["programs_run"] == {"samples": 8, "distinct": 4}
    assert [(r["task_id"], r["sample"], r["strong"]) for r in rows] == [
        ("HumanEval/0", 0, True), ("HumanEval/0", 1, True), ("HumanEval/0", 2, True),
        ("HumanEval/0", 3, False), ("HumanEval/1", 0, False), ("HumanEval/1", 1, False),
        ("HumanEval/1", 2, True), ("HumanEval/1", 3, True),
    ]  # fmt: skip


def test_a_samples_file_missing_a_problem_is_refused_or_scored_as_failures(
    sqlite_url, tmp_path, monkeypatch
):
    path = tmp_path / "partial.jsonl"
    path.write_text(_canonical_lines(["HumanEval/0"]))
    with pytest.raises(InputError, match=r"lacks 1 of the profile's 2 problems \(HumanEval/1\)"):
        prepare("verifiers", None, "smoke", "cpu", [f"samples={path}", "problems=2"])
    overrides = [f"samples={path}", "problems=2", "permutations=10", "missing_problems=fail"]
    _, outcome = _run(sqlite_url, overrides, tmp_path, monkeypatch)
    scalars = {name: value for name, (value, _unit) in outcome.scalars.items()}
    assert scalars["pass_at_1_strong"] == pytest.approx(0.5)  # the missing one scores 0
    assert scalars["problems_not_covered"] == 1
    assert outcome.gate_passed is False and "not scored from samples" in outcome.gate_reason


def test_the_samples_files_content_not_its_path_makes_the_task_spec(tmp_path):
    """New content at the same path is a new task spec (so --resume does not skip it); the
    same content elsewhere, or gzip-compressed as .jsonl.gz, is read the same."""
    import gzip

    def spec_hash(path: Path, *extra: str) -> str:
        prepared = prepare(
            "verifiers", None, "smoke", "cpu", [f"samples={path}", "problems=1", *extra]
        )
        return prepared.resolved.task_spec_hash

    path = tmp_path / "s.jsonl"
    path.write_text(_canonical_lines(["HumanEval/0"]))
    first = spec_hash(path)
    elsewhere = tmp_path / "copy" / "s.jsonl"
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(path.read_bytes())
    assert spec_hash(elsewhere) == first
    path.write_text(_canonical_lines(["HumanEval/0"], copies=3))
    assert spec_hash(path) != first
    compressed = tmp_path / "s.jsonl.gz"
    compressed.write_bytes(gzip.compress(path.read_bytes()))
    read = samples.read_samples(compressed, {"HumanEval/0": ""})
    assert len(read.programs["HumanEval/0"]) == 3 and read.missing == []
    with pytest.raises(InputError, match="not the pinned samples_sha256"):
        spec_hash(path, "samples_sha256=" + "0" * 64)
    (tmp_path / "broken.jsonl.gz").write_bytes(b"not gzip")
    with pytest.raises(InputError, match="not readable gzip"):
        spec_hash(tmp_path / "broken.jsonl.gz")


def test_evalplus_results_are_imported_without_running_programs(sqlite_url, tmp_path, monkeypatch):
    def record(base: str, plus: str | None) -> dict:
        return {"task_id": "x", "solution": "", "base_status": base, "plus_status": plus}

    results = {"eval": {
        "HumanEval/0": [record("pass", "pass"), record("pass", "fail")],
        "HumanEval/1": [record("fail", "pass"), record("pass", "pass"), record("pass", "pass")],
        "HumanEval/7": [record("pass", "pass")],
    }}  # fmt: skip
    path = tmp_path / "eval_results.json"
    path.write_text(json.dumps(results))
    overrides = [f"samples={path}", "problems=2", "permutations=10"]
    prepared, outcome = _run(sqlite_url, overrides, tmp_path, monkeypatch)
    assert prepared.method.name == "evalplus-results"
    assert outcome.status == "succeeded", outcome.error
    scalars = {name: value for name, (value, _unit) in outcome.scalars.items()}
    assert scalars["samples_per_problem"] == 2  # every task cut to the smallest count
    assert scalars["pass_at_1_weak"] == pytest.approx((1.0 + 0.5) / 2)
    assert scalars["pass_at_1_strong"] == pytest.approx((0.5 + 0.5) / 2)
    assert "programs_per_s" not in scalars
    path.write_text('{"eval": [1, 2]}')
    with pytest.raises(InputError, match=r"is not an EvalPlus eval_results\.json"):
        prepare("verifiers", None, "smoke", "cpu", overrides)
    path.write_text(json.dumps({"eval": {"HumanEval/0": [record("pass", "pass")]}}))
    with pytest.raises(InputError, match="lacks 1 of the profile's 2 problems"):
        prepare("verifiers", None, "smoke", "cpu", overrides)
