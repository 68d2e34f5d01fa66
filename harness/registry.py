"""Finds tasks through the `budgetbench.tasks` entry-point group, so third parties can ship one."""

from __future__ import annotations

import functools
from importlib.metadata import entry_points

from harness.errors import InputError

ENTRY_POINT_GROUP = "budgetbench.tasks"


def task_names() -> list[str]:
    """Names of every installed task, without importing any of them."""
    return sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})


def load_task(name: str) -> type:
    """Import and return the task class registered under `name`."""
    from tasks.base import Task

    matches = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not matches:
        known = ", ".join(task_names()) or "none installed"
        raise InputError(f"unknown task {name!r} (known tasks: {known})")
    try:
        task_cls = matches[0].load()
    except Exception as exc:  # a broken third-party task must not take the CLI down
        raise InputError(f"task {name!r} failed to import: {type(exc).__name__}: {exc}") from exc
    if not (isinstance(task_cls, type) and issubclass(task_cls, Task)):
        raise InputError(f"entry point {name!r} does not name a budgetbench Task subclass")
    return task_cls


def task_report_lines(task_name: str, scalars: dict[str, float]) -> list[str]:
    """The task's own summary of a run's scalars (e.g. quant's llama.cpp-style table), as `show`
    and the site's run page print it; nothing for a task this installation does not have."""
    try:
        task = _task_instance(task_name)
    except InputError:
        return []
    return task.report_lines(scalars)


@functools.cache
def _task_instance(task_name: str):
    """One instance per task: the site asks once per run page, and scanning the entry points
    each time cost about 5 ms a page (50 s for a 10,000-run site)."""
    return load_task(task_name)()
