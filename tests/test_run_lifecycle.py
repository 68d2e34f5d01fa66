"""The run lifecycle: running before work, atomic finish, failures keep partial measurements."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import FAST_PROBE, cli_json
from helpers import run_probe

from harness.errors import InputError
from harness.registry import load_task
from harness.run.runner import resolve_device
from harness.store.models import Run
from harness.store.queries import get_run

METHOD = """
import time
import torch

SEED_DRAWS = []  # one draw from the global RNG at the first matmul call of each run
STATE = {"drawn": False}

def matmul(a, b, run):
    if not STATE["drawn"]:
        SEED_DRAWS.append(torch.rand(1).item())
        STATE["drawn"] = True
    return a @ b

def attention(q, k, v, run):
    STATE["drawn"] = False
    {attention}

def copy(dst, src, run):
    dst.copy_(src)
"""


def method_file(tmp_path: Path, attention: str) -> str:
    path = tmp_path / "method.py"
    path.write_text(METHOD.replace("{attention}", attention))
    return str(path)


SDPA = "return torch.nn.functional.scaled_dot_product_attention(q, k, v)"


def test_succeeded_run_stores_measurements_settings_and_provenance(db_url):
    store, (outcome,) = run_probe(db_url)
    assert outcome.status == "succeeded", outcome.error
    with store.session() as session:
        run = get_run(session, outcome.run_id)
        assert run.status == "succeeded" and run.gate_passed is True
        assert {m.name for m in run.measurements} == {
            "matmul_fp32_tflops",
            "memory_bandwidth_gbps",
            "attention_tflops",
        }
        for measurement in run.measurements:
            assert measurement.value > 0 and len(measurement.samples) == 2
            assert measurement.value == pytest.approx(
                sorted(measurement.samples)[0] / 2 + sorted(measurement.samples)[1] / 2
            )
        assert run.settings["matmul_size"] == 64 and run.seed == 0 and run.device == "cpu"
        assert run.provenance["budgetbench_version"] and run.provenance["hostname"]
        assert 0 < run.timed_s <= run.wall_s
        assert run.finished_at is not None and run.machine.hardware_key == run.hardware_key


def test_crash_mid_run_keeps_partial_measurements(db_url, tmp_path):
    method = method_file(tmp_path, "raise RuntimeError('attention exploded')")
    store, (outcome,) = run_probe(db_url, method)
    assert outcome.status == "failed"
    with store.session() as session:
        run = get_run(session, outcome.run_id)
        assert run.status == "failed" and run.gate_passed is None
        assert run.error.startswith("RuntimeError: attention exploded")
        assert "Traceback" in run.error
        assert {m.name for m in run.measurements} == {"matmul_fp32_tflops", "memory_bandwidth_gbps"}


def test_keyboard_interrupt_marks_run_failed_and_propagates(sqlite_url, tmp_path):
    method = method_file(tmp_path, "raise KeyboardInterrupt")
    with pytest.raises(KeyboardInterrupt):
        run_probe(sqlite_url, method)
    from harness.store import open_store

    with open_store(sqlite_url).session() as session:
        (run,) = session.query(Run).all()
        assert run.status == "failed" and run.error == "interrupted (KeyboardInterrupt)"
        assert len(run.measurements) == 2


def test_sigterm_marks_the_running_run_failed_and_exits_130(tmp_path):
    process, db = _start_sleeping_run(tmp_path)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    connection = sqlite3.connect(db)
    status, error = connection.execute("SELECT status, error FROM runs").fetchone()
    assert (status, error) == ("failed", "interrupted (Interrupted)")
    assert connection.execute("SELECT count(*) FROM measurements").fetchone()[0] == 2


def test_seed_is_applied_before_the_method_runs(sqlite_url, tmp_path):
    method = method_file(tmp_path, SDPA)
    _, outcomes = run_probe(sqlite_url, method, seeds=(0, 1, 0))
    assert [o.seed for o in outcomes] == [0, 1, 0]
    module = next(
        m for name, m in sys.modules.items()
        if name.startswith("budgetbench_method_") and getattr(m, "__file__", None) == method
    )  # fmt: skip
    first, second, third = module.SEED_DRAWS
    assert first == third and first != second


def test_a_method_returning_wrong_results_fails_the_run(sqlite_url, tmp_path):
    path = tmp_path / "wrong.py"
    path.write_text(
        METHOD.replace("{attention}", SDPA).replace("return a @ b", "return (a @ b) * 0")
    )
    _, (outcome,) = run_probe(sqlite_url, str(path))
    assert outcome.status == "failed"
    assert "matmul result differs from torch's" in outcome.error


def test_missing_a_gated_metric_is_recorded_as_gate_miss(sqlite_url):
    _, (outcome,) = run_probe(sqlite_url, extra=('matmul_dtypes=["bfloat16"]',))
    assert outcome.status == "succeeded"
    assert outcome.gate_passed is False
    assert outcome.gate_reason == "missing measurements: matmul_fp32_tflops"


@pytest.mark.parametrize("device", ["tpu", "cuda:x", "gpu"])
def test_malformed_device_is_rejected(device):
    with pytest.raises(InputError, match="must be auto, cpu, cuda or cuda:N"):
        resolve_device(device, load_task("probe"))


def test_cuda_without_a_gpu_is_rejected():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(InputError, match="no CUDA device is available"):
        resolve_device("cuda:0", load_task("probe"))
    assert resolve_device("auto", load_task("probe")) == "cpu"


def _start_sleeping_run(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    """A CLI run whose attention call sleeps, returned once its row is `running`."""
    method = method_file(tmp_path, "time.sleep(120)")
    db = tmp_path / "store.db"
    process = subprocess.Popen(
        [sys.executable, "-c", "from harness.cli import main; main()",
         "run", "probe", "--method", method, "--db", str(db), *FAST_PROBE],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.3)
        try:
            connection = sqlite3.connect(db)
            running = connection.execute(
                "SELECT count(*) FROM runs WHERE status='running'"
            ).fetchone()
            measured = connection.execute("SELECT count(*) FROM measurements").fetchone()
        except sqlite3.OperationalError:
            continue
        if running[0] == 1 and measured[0] == 2:  # matmul and bandwidth done, attention sleeping
            return process, db
    process.kill()
    raise AssertionError("the run never reached its sleeping attention call")


def test_sigkill_leaves_a_failed_run_with_its_measurements(tmp_path):
    process, db = _start_sleeping_run(tmp_path)
    process.kill()
    process.wait(timeout=30)
    (run,) = cli_json("runs", "--db", str(db))
    assert run["status"] == "failed"
    assert "died without finishing it" in run["error"]
    (shown,) = [cli_json("show", run["id"], "--db", str(db))]
    assert {m["name"] for m in shown["measurements"]} == {
        "matmul_fp32_tflops",
        "memory_bandwidth_gbps",
    }


def test_a_live_run_is_not_reaped(tmp_path):
    process, db = _start_sleeping_run(tmp_path)
    try:
        (run,) = cli_json("runs", "--db", str(db))
        assert run["status"] == "running"
    finally:
        process.kill()
        process.wait(timeout=30)


def test_budget_clock_counts_only_timed_regions():
    from tasks.base import BudgetClock

    clock = BudgetClock(budget_s=10.0)
    time.sleep(0.05)
    assert clock.timed_s == 0.0
    with clock.timed():
        time.sleep(0.05)
        with clock.untimed():
            time.sleep(0.2)
        time.sleep(0.05)
    assert 0.1 <= clock.timed_s < 0.2
    assert clock.remaining_s() == pytest.approx(10.0 - clock.timed_s)
    with pytest.raises(RuntimeError, match="do not nest"), clock.timed(), clock.timed():
        pass


def test_saved_artifact_is_stored_with_its_checksum_and_shown(tmp_path, monkeypatch):
    """A file the task saves becomes a run artifact beside the SQLite file, listed by `show`."""
    import dataclasses
    import hashlib

    from conftest import fast_probe_overrides

    from harness.run.machine import collect_fingerprint
    from harness.run.runner import execute, prepare, save_machine
    from harness.store import open_store
    from tasks.probe import ProbeTask

    class PlottingProbe(ProbeTask):
        def run(self, ctx, method):
            ctx.artifact_dir.mkdir(parents=True, exist_ok=True)
            plot = ctx.artifact_dir / "curve.svg"
            plot.write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
            ctx.save_artifact("curve", plot)
            with pytest.raises(ValueError, match="saved twice"):
                ctx.save_artifact("curve", plot)
            raise RuntimeError("crash after the plot")

    monkeypatch.delenv("BUDGETBENCH_ARTIFACT_DIR", raising=False)
    db = tmp_path / "bb.db"
    store = open_store(str(db))
    prepared = prepare("probe", None, "smoke", "cpu", fast_probe_overrides())
    prepared = dataclasses.replace(prepared, task=PlottingProbe())
    (outcome,) = execute(store, prepared, [0], save_machine(store, collect_fingerprint()))
    assert outcome.status == "failed"
    with store.session() as session:
        (artifact,) = get_run(session, outcome.run_id).artifacts
    path = tmp_path / "artifacts" / outcome.run_id / "curve.svg"
    assert artifact.uri == path.as_uri() and artifact.media_type == "image/svg+xml"
    assert artifact.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    shown = subprocess.run(
        [sys.executable, "-m", "harness", "show", outcome.run_id, "--db", str(db)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "curve" in shown and "image/svg+xml" in shown
