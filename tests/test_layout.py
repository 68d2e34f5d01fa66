"""The package layout's import rules, read from the source with `ast` (nothing is imported):

- a task imports only `tasks.base`, `tasks.common` and itself (no other task, no harness), and
  `tasks.common` imports no task;
- the harness (and `budgetbench`, its library face) imports no task module but `tasks.base`;
- the harness's modules import each other without a cycle (module-level imports: those that run
  when a module is imported).

The first two rules count every import, also those inside functions.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ("tasks.base", "tasks.common")


def _modules(package: str) -> dict[str, Path]:
    """Dotted name -> file of every module of `package` (a folder at the repository's root)."""
    modules = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _imported(name: str, path: Path, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
    """The dotted names an import statement of module `name` (at `path`) reads."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = node.module or ""
    if node.level:  # relative: resolved against the importing module's package
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        anchor = package[: len(package) - node.level + 1]
        base = ".".join([*anchor, base] if base else anchor)
    for alias in node.names:  # `from a import b` reads a.b when b is a module, else a
        yield f"{base}.{alias.name}"


def _imports(name: str, path: Path, module_level: bool = False) -> set[str]:
    """Every name module `name` imports; with `module_level`, only the imports that run when it
    is imported (not inside functions or classes, nor under `if TYPE_CHECKING:`)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.update(_imported(name, path, node))
            return
        if module_level:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
                return
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                for child in node.orelse:
                    visit(child)
                return
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    return found


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _task_of(name: str) -> str | None:
    """The task package a `tasks.*` module belongs to (None for the shared modules)."""
    parts = name.split(".")
    if len(parts) < 2 or any(_within(name, shared) for shared in SHARED):
        return None
    return ".".join(parts[:2])


def test_a_task_imports_only_itself_tasks_base_and_tasks_common():
    wrong = []
    for name, path in _modules("tasks").items():
        own = _task_of(name)
        for imported in sorted(_imports(name, path)):
            if _within(imported, "harness") or _within(imported, "budgetbench"):
                wrong.append(f"{name} imports {imported}")
            elif _within(imported, "tasks") and imported != "tasks":
                other = _task_of(imported)
                if other is not None and other != own:
                    wrong.append(f"{name} imports {imported}")
    assert not wrong, "\n".join(wrong)


def test_the_harness_imports_no_task_module_but_tasks_base():
    wrong = [
        f"{name} imports {imported}"
        for package in ("harness", "budgetbench")
        for name, path in _modules(package).items()
        for imported in sorted(_imports(name, path))
        if _within(imported, "tasks") and not _within(imported, "tasks.base")
    ]
    assert not wrong, "\n".join(wrong)


def test_the_input_error_tasks_raise_is_the_one_the_harness_catches():
    from harness.errors import InputError
    from tasks.base import InputError as TaskInputError

    assert InputError is TaskInputError  # so a task's bad input still exits 2


def test_harness_modules_import_each_other_without_a_cycle():
    modules = _modules("harness")

    def module_of(imported: str) -> str | None:  # the longest prefix that is a harness module
        parts = imported.split(".")
        for end in range(len(parts), 0, -1):
            if ".".join(parts[:end]) in modules:
                return ".".join(parts[:end])
        return None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = {module_of(imported) for imported in _imports(name, path, module_level=True)}
        graph[name] = {target for target in targets if target and target != name}
    cycle = _find_cycle(graph)
    assert cycle is None, " -> ".join(cycle or [])


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as a path that returns to its start, or None (depth-first search)."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" once explored
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_rules_catch_what_they_forbid(tmp_path):
    """The checks above are not vacuous: on a made-up module each rule fires."""
    module = tmp_path / "workload.py"
    module.write_text(
        "from tasks.cramming.corpus import load_corpus\n"
        "from . import plots\n"
        "def run():\n    from harness.errors import InputError\n"
    )
    name = "tasks.quant.workload"
    assert _imports(name, module) == {
        "tasks.cramming.corpus.load_corpus",
        "tasks.quant.plots",
        "harness.errors.InputError",
    }
    assert _imports(name, module, module_level=True) == {
        "tasks.cramming.corpus.load_corpus",
        "tasks.quant.plots",
    }
    assert _task_of("tasks.cramming.corpus.load_corpus") == "tasks.cramming" != _task_of(name)
    assert _task_of("tasks.common.corpus") is None and _task_of("tasks.base.InputError") is None
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
