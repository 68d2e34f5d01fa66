"""Importing pytest-benchmark results: runs with their machine and commit, idempotently."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FAST_PROBE, assert_one_line_error, cli_json, run_cli

SUITE = """
import time

def test_sleep_short(benchmark):
    benchmark(time.sleep, 0.001)

def test_sleep_long(benchmark):
    benchmark(time.sleep, 0.003)
"""


@pytest.fixture(scope="module")
def benchmark_json(tmp_path_factory) -> Path:
    """A real pytest-benchmark file, made by running a tiny benchmark suite."""
    root = tmp_path_factory.mktemp("pb")
    (root / "test_tiny.py").write_text(SUITE)
    output = root / "results.json"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(root / "test_tiny.py"),
         "--benchmark-only", "--benchmark-min-rounds=5", "--benchmark-max-time=0.05",
         "--benchmark-save-data", f"--benchmark-json={output}", "-o", "addopts="],
        check=True, capture_output=True, cwd=root,
    )  # fmt: skip
    return output


def import_file(path: Path, db: str, check: bool = True):
    return run_cli("import", "--format", "pytest-benchmark", str(path), "--db", db, check=check)


def test_benchmarks_become_runs_with_machine_and_timings(benchmark_json, tmp_path):
    db = str(tmp_path / "s.db")
    result = run_cli(
        "import", "--format", "pytest-benchmark", str(benchmark_json), "--db", db, check=True
    )
    assert "imported 2 runs (0 already present), 1 new machines" in result.stdout
    runs = {run["method_name"].split("::")[-1]: run for run in cli_json("runs", "--db", db)}
    assert set(runs) == {"test_sleep_short", "test_sleep_long"}
    source = json.loads(benchmark_json.read_text())
    for name, run in runs.items():
        assert run["task"] == "pytest-benchmark" and run["status"] == "succeeded"
        detail = cli_json("show", run["id"], "--db", db)
        stats = next(b["stats"] for b in source["benchmarks"] if b["name"] == name)
        median = next(m for m in detail["measurements"] if m["name"] == "median_s")
        assert median["value"] == stats["median"] and median["higher_is_better"] is False
        assert len(median["samples"]) == stats["rounds"]
        assert (
            detail["machine"]["fingerprint"]["software"]["python"]
            == source["machine_info"]["python_version"]
        )
    assert runs["test_sleep_long"]["id"] != runs["test_sleep_short"]["id"]
    short = cli_json("show", runs["test_sleep_short"]["id"], "--db", db)
    long = cli_json("show", runs["test_sleep_long"]["id"], "--db", db)
    median = {d["method_name"]: d["measurements"][0]["value"] for d in (short, long)}
    assert median[long["method_name"]] > median[short["method_name"]] >= 0.001


def test_importing_the_same_file_twice_adds_nothing(benchmark_json, tmp_path):
    db = str(tmp_path / "s.db")
    run_cli("import", "--format", "pytest-benchmark", str(benchmark_json), "--db", db, check=True)
    again = run_cli(
        "import", "--format", "pytest-benchmark", str(benchmark_json), "--db", db, check=True
    )
    assert "imported 0 runs (2 already present), 0 new machines" in again.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xfb\x00binary", "not a JSON file"),
        (b'{"benchmarks": []}', "not a pytest-benchmark JSON file"),
        (
            b'{"machine_info": {}, "benchmarks": [{"name": "x"}], "datetime": "2026-01-01"}',
            "malformed pytest-benchmark file",
        ),
    ],
)
def test_bad_pytest_benchmark_files_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    result = run_cli(
        "import", "--format", "pytest-benchmark", str(path), "--db", str(tmp_path / "s.db")
    )
    assert_one_line_error(result, 2, message)


def test_with_budgetbench_installed_a_benchmark_machine_is_the_runs_machine(tmp_path):
    import importlib.metadata

    root = tmp_path / "suite"
    root.mkdir()
    (root / "test_tiny.py").write_text(SUITE)
    output = root / "results.json"
    installed = any(
        e.name == "budgetbench" for e in importlib.metadata.entry_points(group="pytest11")
    )
    plugin = [] if installed else ["-p", "harness.pytest_plugin"]  # as the entry point does
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *plugin,
         str(root / "test_tiny.py"), "--benchmark-only", "--benchmark-max-time=0.01",
         f"--benchmark-json={output}", "-o", "addopts="],
        check=True, capture_output=True, cwd=root,
    )  # fmt: skip
    db = str(tmp_path / "s.db")
    import_file(output, db)
    run_cli("run", "probe", *FAST_PROBE, "--db", db, check=True)
    runs = cli_json("runs", "--db", db)
    assert {run["task"] for run in runs} == {"pytest-benchmark", "probe"}
    assert len({run["hardware_key"] for run in runs}) == 1, "one machine, one history"
    software = {
        run["task"]: cli_json("show", run["id"], "--db", db)["machine"]["fingerprint"]["software"]
        for run in runs
    }
    commit = {"project", "commit", "commit_dirty"}
    assert commit <= set(software["pytest-benchmark"])  # the commit joins the software
    assert {k: v for k, v in software["pytest-benchmark"].items() if k not in commit} == software[
        "probe"
    ]
