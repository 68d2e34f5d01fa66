"""The method interface of task `verifiers`: a sample source, and optionally its own verifier.

A method produces candidate programs for programming problems (HumanEval or MBPP); the harness
runs every program in its sandbox (never in the method's process) against weak tests (the
benchmark's base tests) and strong ones (EvalPlus' plus tests, or a declared split), and measures
how resampling with the imperfect verifier scales with the number of samples k. Programs come
back to the harness as text only.

A method may: generate programs any way it likes (a local language model, a search, a file),
seeded by `seed`; with `verify`, judge programs itself (its agreement with the weak tests and the
ceiling it reaches are measured).
A method may not: run the programs it returns, read the problems' tests, or, unless it declares
`SYNTHETIC = True`, use `Problem.canonical_solution` (a real sample source never sees it in
spirit: the reference solution is there for synthetic sources only).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from tasks.base import MethodRun, optional

if TYPE_CHECKING:
    from tasks.verifiers.problems import Problem

SYNTHETIC: bool = False
"""True for a source that is not a model (built from the canonical solutions): every note,
metric description and plot of its runs then says SYNTHETIC."""

READS_SAMPLES_FILE: bool = False
"""True for a method that generates nothing because the task reads a samples file instead
(`--set samples=FILE`); such a method runs only with that setting, and that setting only with
such a method."""

IMPORTS_STATUSES: bool = False
"""With READS_SAMPLES_FILE: the file is an EvalPlus eval_results.json whose per-sample statuses
are imported instead of running anything."""


def generate(
    problems: Sequence[Problem], n: int, seed: int, run: MethodRun
) -> dict[str, list[str]]:
    """Return `{task_id: [n complete Python programs]}` for every problem in `problems`
    (`tasks.verifiers.problems.Problem`: task_id, prompt, entry_point; canonical_solution for
    synthetic sources only). Exactly `n` strings per problem; a program is the whole file (for
    a completion, the prompt plus the completion). `seed` is the run's seed (also `run.seed`):
    the same seed must give the same programs. Not timed; the programs run in the harness's
    sandbox, never here."""


@optional
def verify(problem: Problem, program: str, run: MethodRun) -> bool:
    """Optional: the method's own verifier; True when it accepts `program` for `problem`.
    Called in the harness's process after the sandboxed runs, once per sample: it must not run
    `program` (its agreement with the weak tests and its resampling ceiling are recorded)."""
