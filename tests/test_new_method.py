"""`budgetbench new-method`: a method file that imports none of the task's internals and loads."""

from __future__ import annotations

import ast
import importlib
import inspect

import pytest
from conftest import FAST_PROBE, assert_one_line_error, run_cli

from harness.registry import load_task
from harness.run.methods import load_method


def internal_imports(path) -> list[str]:
    """Imports from the task's internal modules, other than the classes its interface names (a
    copied class would be another type than the one the task checks)."""
    tree = ast.parse(path.read_text())
    found = [
        f"{node.module}.{alias.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if not inspect.isclass(getattr(importlib.import_module(node.module or ""), alias.name))
    ]
    found += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    return [m for m in found if m.startswith("tasks.") and not m.startswith("tasks.base.")]


@pytest.mark.parametrize(
    "task, reference",
    [
        ("large-batch", "adamw"),  # imports tasks.large_batch.schedules
        ("quant", "bnb-nf4"),  # imports tasks.quant.formats
        ("cramming", "crammed-bert"),  # tasks.cramming.recipes (a module), EncoderConfig (a class)
        ("verifiers", "mutants"),  # names itself with NAME
    ],
)
def test_a_copied_reference_imports_no_internals_and_loads(tmp_path, task, reference):
    output = tmp_path / "my_method.py"
    result = run_cli("new-method", task, "--from", reference, "-o", str(output), check=True)
    assert "method 'my-method'" in result.stdout
    assert internal_imports(output) == []
    method = load_method(load_task(task), str(output))
    assert method.name == "my-method" and not method.is_reference
    reference_method = load_method(load_task(task), reference)
    assert method.hyperparameters == reference_method.hyperparameters


def test_a_new_probe_method_runs(tmp_path):
    output = tmp_path / "fast_copy.py"
    run_cli("new-method", "probe", "-o", str(output), check=True)
    result = run_cli(
        "run", "probe", "--method", str(output), *FAST_PROBE, "--db", str(tmp_path / "s.db"),
        check=True,
    )  # fmt: skip
    assert "probe / fast-copy / smoke / seed 0: succeeded" in result.stderr


def test_new_method_never_overwrites_and_names_unknown_references(tmp_path):
    existing = tmp_path / "mine.py"
    existing.write_text("# my work\n")
    result = run_cli("new-method", "probe", "-o", str(existing))
    assert_one_line_error(result, 2, "exists")
    assert existing.read_text() == "# my work\n"
    result = run_cli("new-method", "probe", "--from", "nope", "-o", str(tmp_path / "x.py"))
    assert_one_line_error(result, 2, "has no reference method 'nope' (methods: eager)")
