"""The sweep loop as a library (`harness.executors.sweep`): it runs a planned sweep and shows it
only through the view its caller gives it, so the CLI's console is one view among others."""

from __future__ import annotations

import io
from contextlib import contextmanager, redirect_stderr
from types import SimpleNamespace

from conftest import fast_probe_overrides

from harness.executors.sweep import ExecutorOptions, logs_dir, plan_sweep, run_sweep, template
from harness.store import open_store

CHATTY_METHOD = """
import sys

import torch.nn.functional as F

def matmul(a, b, run):
    sys.stderr.write("a library's warning\\n")
    return a @ b

def attention(q, k, v, run):
    return F.scaled_dot_product_attention(q, k, v)

def copy(dst, src, run):
    dst.copy_(src)
"""


class RecordingView:
    """A `SweepView` that records what the sweep showed, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    @contextmanager
    def progress(self):
        self.events.append(("progress", None))
        yield None

    def starting(self, item) -> None:
        self.events.append(("starting", item.seed))

    def finished(self, outcome) -> None:
        self.events.append(("finished", outcome.seed))

    def note(self, line: str) -> None:
        self.events.append(("note", line))

    @contextmanager
    def capture(self, log_file):
        captured, written = SimpleNamespace(lines=0), io.StringIO()
        with redirect_stderr(written):
            yield captured
        log_file.parent.mkdir(parents=True, exist_ok=True)
        log_file.write_text(written.getvalue())
        captured.lines = len(written.getvalue().splitlines())


def test_a_local_sweep_shows_each_run_through_its_view_and_keeps_its_output_in_the_runs_log(
    sqlite_url, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("BUDGETBENCH_CACHE_DIR", str(tmp_path / "cache"))
    method = tmp_path / "chatty.py"
    method.write_text(CHATTY_METHOD)
    work = template("probe", str(method), "smoke", fast_probe_overrides(), None, None)
    options = ExecutorOptions()
    sweep = plan_sweep([work], 2, "auto", options)
    view = RecordingView()
    outcomes = run_sweep(open_store(sqlite_url), sqlite_url, sweep, options, view)

    assert [(o.seed, o.status) for o in outcomes] == [(0, "succeeded"), (1, "succeeded")]
    logs = [logs_dir() / f"{o.run_id}.log" for o in outcomes]
    lines = [log.read_text().splitlines() for log in logs]
    assert all(lines) and {line for each in lines for line in each} == {"a library's warning"}
    assert view.events == [
        ("progress", None),
        *[
            event
            for seed, log in enumerate(logs)
            for event in (
                ("starting", seed),
                ("finished", seed),
                (
                    "note",
                    f"  {len(lines[seed])} line(s) of third-party output (warnings...) in {log}",
                ),
            )
        ],
    ]
    assert capsys.readouterr() == ("", "")  # the sweep itself printed nothing
