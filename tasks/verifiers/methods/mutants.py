"""Mutation sampler (SYNTHETIC): candidates derived from the canonical solutions by mutations.

Not a model: an offline stand-in whose samples look like a code model's near misses, so the
whole pipeline (sandbox, verifiers, resampling analysis) runs without a GPU or a download. Every
number a run with it produces is about these synthetic samples, not about any language model.

For each problem, a per-problem "skill" s ~ Beta(1, 1.5) (seeded by the run seed and the task
id) is the chance that a sample is the canonical solution unchanged; otherwise the sample gets
one mutation (two with probability `double_mutation`), each drawn from this documented mix over
the sites the solution has (weights renormalized when a kind has no site):

    operator swap     0.25   + <-> -, * -> //, // -> *, % -> //, and <-> or
    comparison swap   0.25   < <-> <=, > <-> >=, == <-> !=, in <-> not in, is <-> is not
    off by one        0.20   an integer constant c -> c + 1 or c - 1
    dropped branch    0.15   an `if` statement replaced by its else-branch (or `pass`)
    wrong constant    0.15   a constant replaced: numbers x -> 2x + 3, strings reversed or
                             emptied, True <-> False

A mutant can be equivalent to the original (it then passes every test): that is measured, not
filtered out. Mutations are `ast` rewrites of the solution's function bodies only, never of the
prompt.
"""

from __future__ import annotations

import ast
import random
from collections.abc import Sequence

from tasks.base import MethodRun

NAME = "mutants"
DESCRIPTION = "SYNTHETIC: canonical solutions with seeded program mutations (no model)"
HYPERPARAMETERS = {"skill_alpha": 1.0, "skill_beta": 1.5, "double_mutation": 0.2}
SYNTHETIC = True

MIX = {
    "operator": 0.25,
    "comparison": 0.25,
    "off_by_one": 0.20,
    "dropped_branch": 0.15,
    "constant": 0.15,
}
OPERATOR_SWAPS = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.FloorDiv,
    ast.FloorDiv: ast.Mult,
    ast.Mod: ast.FloorDiv,
}
COMPARISON_SWAPS = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}


def generate(problems: Sequence, n: int, seed: int, run: MethodRun) -> dict[str, list[str]]:
    """n programs per problem: canonical solutions, unchanged or mutated."""
    hp = run.hyperparameters
    samples = {}
    for problem in problems:
        rng = random.Random(f"{seed}/{problem.task_id}")
        skill = rng.betavariate(hp["skill_alpha"], hp["skill_beta"])
        programs = []
        for _ in range(n):
            if rng.random() < skill:
                programs.append(problem.prompt + problem.canonical_solution)
                continue
            count = 2 if rng.random() < hp["double_mutation"] else 1
            programs.append(mutate(problem.prompt, problem.canonical_solution, rng, count))
        samples[problem.task_id] = programs
    return samples


def mutate(prompt: str, solution: str, rng: random.Random, count: int = 1) -> str:
    """The program prompt + solution with `count` mutations in the solution's code."""
    program = prompt + solution
    try:
        tree = ast.parse(program)
    except SyntaxError:
        return program
    first_solution_line = prompt.count("\n") + 1
    for _ in range(count):
        sites = _sites(tree, first_solution_line)
        kinds = [kind for kind in MIX if sites[kind]]
        if not kinds:
            break
        kind = rng.choices(kinds, weights=[MIX[k] for k in kinds])[0]
        _apply(kind, rng.choice(sites[kind]), rng)
    ast.fix_missing_locations(tree)
    return ast.unparse(tree) + "\n"


def _sites(tree: ast.AST, first_line: int) -> dict[str, list]:
    sites: dict[str, list] = {kind: [] for kind in MIX}
    for parent in ast.walk(tree):
        for node in ast.iter_child_nodes(parent):
            if getattr(node, "lineno", 0) < first_line:
                continue
            if (isinstance(node, ast.BinOp) and type(node.op) in OPERATOR_SWAPS) or isinstance(
                node, ast.BoolOp
            ):
                sites["operator"].append(node)
            elif isinstance(node, ast.Compare) and type(node.ops[0]) in COMPARISON_SWAPS:
                sites["comparison"].append(node)
            elif isinstance(node, ast.Constant) and not isinstance(node.value, str | bytes):
                if type(node.value) is int:
                    sites["off_by_one"].append(node)
                if node.value is not None and node.value is not Ellipsis:
                    sites["constant"].append(node)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                if not isinstance(parent, ast.Expr):  # not a docstring
                    sites["constant"].append(node)
            elif isinstance(node, ast.If):
                sites["dropped_branch"].append((parent, node))
    return sites


def _apply(kind: str, site, rng: random.Random) -> None:
    if kind == "operator":
        if isinstance(site, ast.BoolOp):
            site.op = ast.Or() if isinstance(site.op, ast.And) else ast.And()
        else:
            site.op = OPERATOR_SWAPS[type(site.op)]()
    elif kind == "comparison":
        site.ops[0] = COMPARISON_SWAPS[type(site.ops[0])]()
    elif kind == "off_by_one":
        site.value += rng.choice((1, -1))
    elif kind == "constant":
        value = site.value
        if isinstance(value, bool):
            site.value = not value
        elif isinstance(value, int | float):
            site.value = 2 * value + 3
        elif isinstance(value, str):
            site.value = value[::-1] if len(value) > 1 and rng.random() < 0.5 else ""
    elif kind == "dropped_branch":
        parent, node = site
        replacement = node.orelse or [ast.Pass()]
        for field in ("body", "orelse"):
            block = getattr(parent, field, None)
            if isinstance(block, list) and node in block:
                index = block.index(node)
                block[index : index + 1] = replacement
                return
