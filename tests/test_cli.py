"""The command line end to end: real runs, human and JSON output, exit codes, one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import FAST_PROBE, assert_one_line_error, cli_json, run_cli

from tasks.probe import ProbeTask


def test_help_imports_neither_torch_nor_sqlalchemy():
    code = (
        "import sys; from harness.cli import cli; from click.testing import CliRunner;"
        "r = CliRunner().invoke(cli, ['--help']); assert r.exit_code == 0, r.output;"
        "heavy = ('torch', 'sqlalchemy', 'rich', 'tasks.probe');"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "command", ["tasks", "run", "suite", "runs", "show", "machine", "export", "import", "db"]
)
def test_every_command_has_help(command):
    result = run_cli(command, "--help", check=True)
    assert "Usage: " in result.stdout


def test_smoke_probe_run_is_stored_and_shown(tmp_path):
    db = str(tmp_path / "store.db")
    (outcome,) = cli_json("run", "probe", "--profile", "smoke", "--db", db)
    assert outcome["status"] == "succeeded" and outcome["gate_passed"] is True
    assert set(outcome["measurements"]) >= {
        "matmul_fp32_tflops",
        "memory_bandwidth_gbps",
        "attention_tflops",
    }

    shown = run_cli("show", outcome["run_id"][:8], "--db", db, check=True).stdout
    for name, value in outcome["measurements"].items():
        assert name in shown and f"{value:.4g}" in shown
    assert "succeeded" in shown

    detail = cli_json("show", outcome["run_id"], "--db", db)
    assert detail["machine"]["hardware_key"] == detail["hardware_key"]
    assert {m["name"] for m in detail["measurements"]} == set(outcome["measurements"])

    (listed,) = cli_json("runs", "--db", db, "--task", "probe")
    assert listed["id"] == outcome["run_id"]
    for nothing in (("--task", "cramming"), ("--status", "failed")):  # exit 2, never an empty list
        assert_one_line_error(run_cli("runs", "--db", db, *nothing, "--json"), 2, "no runs match")


def test_suite_run_runs_every_reference_method_and_fails_on_unknown_task(tmp_path):
    """The whole suite runs in CI as the README's main job; here one task keeps it quick."""
    db = str(tmp_path / "store.db")
    outcomes = cli_json("suite", "run", "--profile", "smoke", "--task", "probe", "--db", db)
    assert [(o["task"], o["method"]) for o in outcomes] == [
        ("probe", m) for m in ProbeTask.reference_methods
    ]
    assert all(o["status"] == "succeeded" for o in outcomes)
    assert_one_line_error(
        run_cli("suite", "run", "--task", "nope", "--db", db), 2, "not in suite v1"
    )


def test_human_output_has_a_summary_and_run_ids(tmp_path):
    result = run_cli(
        "run", "probe", "--seeds", "2", "--db", str(tmp_path / "s.db"), *FAST_PROBE, check=True
    )
    assert "Runs" in result.stdout and result.stdout.count("succeeded") >= 2
    assert result.stderr.count("✓ probe / eager / smoke / seed") == 2


def test_a_failed_run_exits_1_and_is_listed_as_failed(tmp_path):
    method = tmp_path / "bad.py"
    method.write_text(
        "def matmul(a, b, run): return a @ b\n"
        "def attention(q, k, v, run): raise ValueError('nope')\n"
        "def copy(dst, src, run): dst.copy_(src)\n"
    )
    db = str(tmp_path / "s.db")
    result = run_cli("run", "probe", "--method", str(method), "--db", db, *FAST_PROBE)
    assert result.returncode == 1
    assert "ValueError: nope" in result.stderr
    (run,) = cli_json("runs", "--db", db, "--status", "failed")
    assert run["method_name"] == "bad"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "nosuchtask"], "unknown task 'nosuchtask'"),
        (["run", "probe", "--profile", "huge"], "has no profile 'huge'"),
        (["run", "probe", "--set", "repeat=3"], "has no setting 'repeat'"),
        (["run", "probe", "--set", "repeats=lots"], "expected int"),
        (["run", "probe", "--set", "hp.lr=1"], "has no hyperparameter 'lr'"),
        (["run", "probe", "--device", "tpu"], "must be auto, cpu, cuda or cuda:N"),
        (["run", "probe", "--suite", "v99"], "suite v99 has no spec"),
        (["show", "abc"], "at least 4 characters"),
        (["show", "ffffffff"], "no run with id 'ffffffff'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    result = run_cli(*args, "--db", str(tmp_path / "s.db"))
    assert_one_line_error(result, 2, message)


def test_usage_errors_exit_2():
    assert run_cli("run").returncode == 2
    assert run_cli("runs", "--status", "weird").returncode == 2
    assert run_cli("no-such-command").returncode == 2


def test_debug_shows_the_traceback(tmp_path):
    result = run_cli("--debug", "run", "nosuchtask", "--db", str(tmp_path / "s.db"))
    assert result.returncode == 1 and "Traceback" in result.stderr


def test_machine_and_tasks_json():
    machine = cli_json("machine")
    assert len(machine["hardware_key"]) == 16 and machine["hardware"]["cpu_logical_cores"] >= 1
    assert machine["software"]["packages"]["torch"]
    tasks = cli_json("tasks")
    (probe,) = [t for t in tasks["tasks"] if t["task"] == "probe"]
    assert probe["profiles"] == ["full", "smoke", "standard"]
    assert "matmul(a, b, run)" in probe["method_interface"]


def test_names_and_errors_print_literally_not_as_terminal_markup(tmp_path):
    method = tmp_path / "markup.py"
    method.write_text(
        'NAME = "[red]evil[/x]"\n'
        "def matmul(a, b, run): return a @ b\n"
        "def attention(q, k, v, run): raise RuntimeError('[/broken] markup')\n"
        "def copy(dst, src, run): dst.copy_(src)\n"
    )
    db = str(tmp_path / "s.db")
    result = run_cli("run", "probe", "--method", str(method), "--db", db, *FAST_PROBE)
    assert result.returncode == 1
    assert "probe / [red]evil[/x] / smoke" in result.stderr
    assert "RuntimeError: [/broken] markup" in result.stderr
    (run,) = cli_json("runs", "--db", db)
    assert "[red]evil[/x]" in run_cli("show", run["id"], "--db", db, check=True).stdout


def test_outcome_line_keeps_the_run_id_in_a_narrow_terminal(tmp_path):
    db = str(tmp_path / "s.db")
    result = run_cli("run", "probe", "--db", db, *FAST_PROBE, env={"COLUMNS": "30"}, check=True)
    (run,) = cli_json("runs", "--db", db)
    assert f"run {run['id'][:8]}" in result.stderr.replace("\n", " ")
