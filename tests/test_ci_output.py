"""Output in a CI log (stdout and stderr not terminals): periodic plain progress, tables at full
width, third-party noise in the run's log file with a count on stderr."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from conftest import FAST_PROBE, run_cli

from harness.cli.report import PlainProgress

# A method whose run writes what libraries write: a FutureWarning, a progress bar on sys.stderr,
# and a child process's complaint straight on file descriptor 2.
NOISY_METHOD = """
import subprocess
import sys
import warnings

import torch.nn.functional as F

HYPERPARAMETERS: dict = {}

def matmul(a, b, run):
    warnings.warn("this API will change", FutureWarning)
    sys.stderr.write("Loading checkpoint shards: 100%|##########| 2/2\\r\\n")
    complain = "import sys; sys.stderr.write('fatal: not a git repository\\\\n')"
    subprocess.run([sys.executable, "-c", complain])
    return a @ b

def attention(q, k, v, run):
    return F.scaled_dot_product_attention(q, k, v)

def copy(dst, src, run):
    dst.copy_(src)
"""


def test_plain_progress_says_what_how_far_and_how_long():
    lines: list[str] = []
    with PlainProgress(lines.append, every_s=0.05) as progress:
        progress.doing("cramming / crammed-bert / smoke / seed 0")
        time.sleep(0.12)  # preparing data: no loop tracked yet, still a line
        for _ in progress.track(range(4), "training", None):
            time.sleep(0.06)
    assert lines, "no progress line within several reporting periods"
    assert all(line.startswith("  … cramming / crammed-bert / smoke / seed 0: ") for line in lines)
    assert all(line.endswith(" s elapsed)") for line in lines)
    assert any(": running (" in line for line in lines)
    assert any(": training " in line and "/4 (" in line for line in lines)


def test_plain_progress_is_silent_before_any_work():
    lines: list[str] = []
    with PlainProgress(lines.append, every_s=0.01):
        time.sleep(0.05)
    assert lines == []


def test_third_party_output_goes_to_the_runs_log_with_a_count(tmp_path):
    method = tmp_path / "noisy.py"
    method.write_text(NOISY_METHOD)
    cache = tmp_path / "cache"
    result = run_cli(
        "run", "probe", "--method", str(method), *FAST_PROBE, "--db", str(tmp_path / "s.db"),
        env={"BUDGETBENCH_CACHE_DIR": str(cache)}, check=True,
    )  # fmt: skip
    for noise in ("FutureWarning", "Loading checkpoint shards", "fatal: not a git repository"):
        assert noise not in result.stderr
    (log_file,) = (cache / "logs").iterdir()
    log = log_file.read_text()
    assert "FutureWarning: this API will change" in log
    assert "Loading checkpoint shards" in log and "fatal: not a git repository" in log
    assert f"line(s) of third-party output (warnings...) in {log_file}" in result.stderr
    assert log_file.stem in result.stderr  # named after the run: the outcome line shows its id
    assert "succeeded" in result.stderr


def test_tables_in_a_log_are_never_cut_to_80_columns(tmp_path):
    method = tmp_path / f"a_method_with_a_name_long_enough_to_be_cut_at_eighty_columns{'x' * 30}.py"
    method.write_text("from tasks.probe.methods.eager import *\n")
    db = str(tmp_path / "s.db")
    run_cli("run", "probe", "--method", str(method), *FAST_PROBE, "--db", db, check=True)
    env = {key: value for key, value in os.environ.items() if key != "COLUMNS"}
    listed = subprocess.run(
        [sys.executable, "-c", "from harness.cli import main; main()", "runs", "--db", db],
        capture_output=True, text=True, timeout=120, check=True, env=env,
    )  # fmt: skip
    assert f"eighty-columns{'x' * 30}" in listed.stdout and "…" not in listed.stdout
    header = listed.stdout.splitlines()[0]
    assert all(column in header for column in ("run", "started UTC", "method", "wall s", "machine"))
