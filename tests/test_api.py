"""The Python API: `import budgetbench` runs tasks and reads runs back, as the CLI does."""

from __future__ import annotations

import json

import pytest
from conftest import cli_json, fast_probe_overrides

import budgetbench

FAST_SETTINGS = {
    pair.partition("=")[0]: json.loads(pair.partition("=")[2]) for pair in fast_probe_overrides()
}


def test_run_stores_runs_and_returns_them_as_stored(tmp_path):
    db = str(tmp_path / "api.db")
    runs = budgetbench.run("probe", profile="smoke", seeds=2, settings=FAST_SETTINGS, db=db)
    assert [run.seed for run in runs] == [0, 1]
    assert all(run.status == "succeeded" and run.method == "eager" for run in runs)
    assert all(run.measurements["matmul_fp32_tflops"] > 0 for run in runs)

    listed = budgetbench.runs(task="probe", db=db)
    assert {run.id for run in listed} == {run.id for run in runs}
    assert budgetbench.runs(task="cramming", db=db) == []
    # The CLI reads the same store the same way.
    assert {run["id"] for run in cli_json("runs", "--db", db)} == {run.id for run in runs}
    shown = budgetbench.show(runs[0].id[:8], db=db)
    assert shown == cli_json("show", runs[0].id, "--db", db)
    assert shown["settings"]["repeats"] == 2

    bundle = tmp_path / "probe.json"
    assert budgetbench.export(bundle, db=db, task="probe") == (2, 1)
    assert len(json.loads(bundle.read_text())["runs"]) == 2


def test_bad_input_raises_before_anything_runs(tmp_path):
    db = tmp_path / "api.db"
    with pytest.raises(budgetbench.InputError, match="has no profile 'huge'"):
        budgetbench.run("probe", profile="huge", db=str(db))
    with pytest.raises(budgetbench.InputError, match="no finished runs match task=probe"):
        budgetbench.export(tmp_path / "x.json", db=str(db), task="probe")
    assert not (tmp_path / "x.json").exists()
