"""What `suite run` runs: the work items of a whole suite version at one profile.

Every task of the suite version that is installed, each with the reference methods its spec
names for the profile (`suite_methods`; all of them when the spec names none, or with
`all_methods`). A task or method name that does not fit is an `InputError` before anything runs.
"""

from __future__ import annotations

from pathlib import Path

from harness.errors import InputError
from harness.executors import WorkItem
from harness.registry import load_task, task_names
from harness.spec import load_spec, spec_task_names


def suite_templates(
    suite_version: str,
    profile: str,
    only_tasks: tuple[str, ...],
    all_methods: bool,
    data_dir: Path | None,
) -> list[WorkItem]:
    """One work item (seed 0) per task and method `suite run` runs, in the suite's task order;
    `only_tasks` narrows the tasks (each must be in the suite)."""
    installed = set(task_names())
    names = [n for n in spec_task_names(suite_version) if n in installed]
    for name in only_tasks:
        if name not in names:
            raise InputError(
                f"task {name!r} is not in suite {suite_version} (tasks: {', '.join(names)})"
            )
    names = [n for n in names if not only_tasks or n in only_tasks]
    return [
        WorkItem(
            task=name,
            method=method,
            profile=profile,
            seed=0,
            suite_version=suite_version,
            data_dir=str(data_dir.resolve()) if data_dir else None,
        )
        for name in names
        for method in (
            load_task(name).reference_methods
            if all_methods
            else suite_methods(name, profile, suite_version)
        )
    ]


def suite_methods(task: str, profile: str, suite_version: str) -> tuple[str, ...]:
    """The reference methods `suite run` runs for `task` at `profile`; a name the task does not
    have is a mistake in the spec, reported before anything runs."""
    references = load_task(task).reference_methods
    chosen = load_spec(task, suite_version).suite_methods.get(profile, references)
    unknown = sorted(set(chosen) - set(references))
    if unknown:
        raise InputError(
            f"suite {suite_version} {task}.toml: suite_methods of profile {profile!r} names"
            f" {', '.join(unknown)}, not reference methods of {task}"
        )
    return chosen
