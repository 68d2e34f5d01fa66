"""Installs by need: which optional part (pip extra) a task or feature needs, and whether it is in.

The core install runs the CLI, the store, the probe, regressions and the site. Each heavier
task has an extra named after it (`budgetbench[quant]`), and so do the Slurm executor
(`[slurm]`) and the PostgreSQL store (`[postgres]`). What an extra holds is read from the
installed package's own metadata (pyproject.toml's optional-dependencies), so this module
never keeps a second list that could drift; without installed metadata (a bare checkout on
PYTHONPATH) nothing is checked.
"""

from __future__ import annotations

import importlib.metadata
import re

from harness.errors import InputError

DISTRIBUTION = "budgetbench"


def _normalize(name: str) -> str:
    """PEP 503 names: `Lm_Eval` and `lm-eval` are the same project."""
    return re.sub(r"[-_.]+", "-", name).lower()


def extra_requirements(extra: str) -> list[str] | None:
    """The project names the extra requires; None when budgetbench's metadata is not installed
    or defines no such extra."""
    from packaging.requirements import Requirement

    try:
        metadata = importlib.metadata.metadata(DISTRIBUTION)
        requirements = importlib.metadata.requires(DISTRIBUTION) or []
    except importlib.metadata.PackageNotFoundError:
        return None
    extras = {_normalize(name) for name in metadata.get_all("Provides-Extra") or []}
    if _normalize(extra) not in extras:
        return None
    names = []
    for text in requirements:
        requirement = Requirement(text)
        marker = requirement.marker  # the core's requirements have none (or no `extra` in it)
        in_extra = marker is not None and "extra" in str(marker)
        if in_extra and marker.evaluate({"extra": _normalize(extra)}):
            names.append(requirement.name)
    return names


def missing(extra: str) -> list[str]:
    """The projects of `extra` that are not installed."""
    absent = []
    for name in extra_requirements(extra) or []:
        try:
            importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            absent.append(name)
    return absent


def require_extra(extra: str, what: str) -> None:
    """An InputError naming the pip command when `extra` is not fully installed."""
    absent = missing(extra)
    if absent:
        raise InputError(
            f"{what} needs budgetbench[{extra}] ({', '.join(absent)} not installed):"
            f" pip install 'budgetbench[{extra}]'"
        )


def extra_providing(module: str) -> str | None:
    """The extra that installs the project importable as `module` (psycopg, submitit, lm_eval),
    when its project name matches the module name."""
    try:
        metadata = importlib.metadata.metadata(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None
    wanted = _normalize(module.split(".")[0])
    for extra in metadata.get_all("Provides-Extra") or []:
        if extra == "all":
            continue
        names = {_normalize(name) for name in extra_requirements(extra) or []}
        if wanted in names:
            return extra
    return None
