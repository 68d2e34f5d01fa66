"""`tasks` and `new-method`: what the installed tasks are and offer a method, and a method file
to start from (`harness.cli.new_method`)."""

from __future__ import annotations

from pathlib import Path

import click

from harness.cli.options import json_option, output_option, suite_option
from harness.cli.output import print_json


@click.command("tasks")
@click.argument("task", required=False)
@suite_option
@json_option
def tasks_command(task: str | None, suite_version: str | None, as_json: bool) -> None:
    """List tasks, their reference methods, profiles and metrics; with TASK, print its method
    interface: the functions a method implements (typed signatures and what they may do), the
    module constants and the reserved hyperparameters with their bounds."""
    from harness.errors import InputError
    from harness.registry import load_task, task_names
    from harness.spec import latest_suite_version, load_spec

    if task is not None:
        from harness.run.methods import interface_json, interface_text

        task_cls = load_task(task)
        if as_json:
            print_json(interface_json(task_cls))
        else:
            click.echo(interface_text(task_cls))
        return
    suite_version = suite_version or latest_suite_version()
    rows = []
    for name in task_names():
        task_cls = load_task(name)
        try:
            profiles = sorted(load_spec(name, suite_version).profiles)
        except InputError:  # an installed task without a spec in this suite version
            profiles = []
        rows.append(
            {
                "task": name,
                "description": task_cls.description,
                "reference_methods": list(task_cls.reference_methods),
                "profiles": profiles,
                "metrics": [
                    {"name": m.name, "unit": m.unit, "higher_is_better": m.higher_is_better}
                    for m in task_cls.metrics
                ],
                "method_interface": [f.signature for f in task_cls.method_interface],
            }
        )
    if as_json:
        print_json({"suite_version": suite_version, "tasks": rows})
        return
    from harness.cli.report import print_tasks

    print_tasks(suite_version, rows)


@click.command("new-method")
@click.argument("task")
@click.option(
    "--from",
    "reference",
    metavar="NAME",
    help="The reference method to start from (default: the task's first).",
)
@output_option("The new method file (.py; must not exist).")
def new_method_command(task: str, reference: str | None, output: Path) -> None:
    """Write a self-contained method file for TASK, copied from a reference method with the
    helpers it imports from the task's internals copied in."""
    from harness.cli.new_method import write_new_method

    name = write_new_method(task, reference, output)
    click.echo(
        f"wrote {output}: method {name!r}; run it with `budgetbench run {task} --method {output}`"
    )
