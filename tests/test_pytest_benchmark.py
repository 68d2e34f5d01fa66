"""Importing pytest-benchmark results: runs with their machine and commit, idempotently."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import assert_one_line_error, cli_json, run_cli

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
