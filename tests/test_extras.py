"""Installs by need: a task whose extra is not installed says which to install (exit 2, one line).

The extras are read from budgetbench's installed metadata. These tests put a real dist-info
directory first on the path, whose metadata declares an extra needing a project that does not
exist, and run the real CLI against it.
"""

from __future__ import annotations

import importlib.metadata
import os

import pytest
from conftest import FAST_PROBE, assert_one_line_error, run_cli

from harness.extras import extra_requirements


def metadata_path(tmp_path, extra: str) -> str:
    """A PYTHONPATH whose first budgetbench metadata makes `extra` need an absent project (and
    registers the real tasks, as the installed metadata does)."""
    dist_info = tmp_path / "meta" / "budgetbench-99.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: budgetbench\nVersion: 99.0\n"
        f"Provides-Extra: {extra}\n"
        f"Requires-Dist: budgetbench-absent-project>=1; extra == '{extra}'\n"
    )
    tasks = importlib.metadata.entry_points(group="budgetbench.tasks")  # the real ones
    lines = [f"{task.name} = {task.value}" for task in tasks]
    (dist_info / "entry_points.txt").write_text("[budgetbench.tasks]\n" + "\n".join(lines) + "\n")
    return os.pathsep.join([str(tmp_path / "meta"), os.environ.get("PYTHONPATH", "")])


@pytest.mark.parametrize("task", ["quant", "large-batch"])
def test_a_task_whose_extra_is_missing_names_the_pip_command(tmp_path, task):
    env = {"PYTHONPATH": metadata_path(tmp_path, task)}
    result = run_cli("run", task, "--db", str(tmp_path / "s.db"), env=env)
    assert_one_line_error(
        result, 2, f"task {task!r} needs budgetbench[{task}] (budgetbench-absent-project not"
    )
    assert f"pip install 'budgetbench[{task}]'" in result.stderr
    assert not (tmp_path / "s.db").exists()


def test_the_probe_needs_no_extra(tmp_path):
    env = {"PYTHONPATH": metadata_path(tmp_path, "quant")}
    run_cli("run", "probe", *FAST_PROBE, "--db", str(tmp_path / "s.db"), env=env, check=True)


def test_the_installed_extras_hold_the_heavy_libraries():
    quant = extra_requirements("quant")
    if quant is None:
        pytest.skip("budgetbench's metadata has no extras here (an older or missing install)")
    assert {"lm-eval", "bitsandbytes", "transformers"} <= set(quant)
    assert extra_requirements("slurm") == ["submitit"]
    assert "torch" not in quant
