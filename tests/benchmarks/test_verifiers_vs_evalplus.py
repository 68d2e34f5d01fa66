"""The verifiers task against `evalplus.evaluate` itself (issue 14): the same real samples file
scored by both in one run, with the same number of workers, both with their ground truth
already computed (like for like: a warm-up run of each first fills EvalPlus's cache of expected
outputs and canonical times and the task's cache of test suites, both under tmp_path, keyed by
the dataset's content; the timed runs then read them); the verdicts must agree (>= 99.5 % per
sample, base and plus: the EvalPlus cross-check CI runs, every disagreement printed with both
sides' reasons) and the task must be at least 3x faster.

Where the task saves time: identical programs of a problem run once (the file repeats about two
thirds of its programs; `workload._verify`), each program runs in a process confined ahead of
its job (no interpreter start), the longest problems start first, and the first failing input
ends a program as it does in EvalPlus. Each side's time is its whole command (`budgetbench
run`, `python -c evaluate(...)`), start-up and, for the task, its analysis and plots included.

Needs the `evalplus` test extra and the real samples beside the checkout
(`../shared/data/code/samples/`, or under $BUDGETBENCH_SHARED_DATA); skips otherwise. About 5
minutes on a quiet 2-core machine (an estimate; 47 minutes measured under load average 15):
    pytest tests/benchmarks/test_verifiers_vs_evalplus.py --benchmark-only
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from tasks.verifiers import crosscheck

DATA = Path(
    os.environ.get("BUDGETBENCH_SHARED_DATA")  # elsewhere than beside the checkout
    or Path(__file__).resolve().parents[2].parent / "shared" / "data"
)
SAMPLES = DATA / "code" / "samples" / "humaneval-codellama-34b-instruct-t0.2-n10.jsonl.gz"
WORKERS = 2


def test_task_is_faster_than_evalplus_with_the_same_verdicts(benchmark, tmp_path):
    pytest.importorskip("evalplus")
    if not SAMPLES.is_file() or not (DATA / crosscheck.PLUS_FILE).is_file():
        pytest.skip(f"needs {SAMPLES} and HumanEval+ beside the checkout")
    cache = tmp_path / "cache"
    timings = {}

    def evalplus_run() -> Path:
        out = tmp_path / "evalplus"
        out.mkdir(exist_ok=True)
        (out / "samples_eval_results.json").unlink(missing_ok=True)  # it would reuse it
        started = time.perf_counter()
        path = crosscheck.run_evalplus(SAMPLES, DATA, WORKERS, out, cache)
        timings["evalplus_s"] = time.perf_counter() - started
        return path

    def task_run() -> Path:
        out = tmp_path / "task"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        started = time.perf_counter()
        path = crosscheck.run_task(SAMPLES, DATA, WORKERS, out, cache)
        timings["task_s"] = time.perf_counter() - started
        return path

    evalplus_run()  # warm-up: EvalPlus's expected outputs and times, cached under tmp_path
    task_run()  # warm-up: the task's test suites, cached under tmp_path
    theirs = evalplus_run()
    ours = benchmark.pedantic(task_run, rounds=1)
    agreement = crosscheck.compare(crosscheck.read_verdicts(ours), crosscheck.read_evalplus(theirs))
    ratio = timings["evalplus_s"] / timings["task_s"]
    load = os.getloadavg()[0]
    benchmark.extra_info.update(
        timings
        | {"ratio": ratio, "load_1min": load}
        | {"base": agreement.share("base"), "plus": agreement.share("plus")}
    )
    print(f"\n{crosscheck.report(agreement, SAMPLES.name)}\nwarm, whole commands: EvalPlus"
          f" {timings['evalplus_s']:.1f} s, task {timings['task_s']:.1f} s: {ratio:.2f}x"
          f" (load average {load:.1f} on {os.cpu_count()} cores)")  # fmt: skip
    assert agreement.share("base") >= 0.995 and agreement.share("plus") >= 0.995, (
        agreement.disagreements[:20]
    )
    assert ratio >= 3.0, timings
