"""`budgetbench new-method`: a self-contained method file to start from.

A reference method may import helpers from its task's internal modules (`tasks.large_batch.
schedules`); a copy of it then breaks when those move, and pip users must dig the file out of
site-packages. Here the reference's source is copied and every `from tasks.<task>.<module> import
name` is replaced by the source of `name` itself, together with what it needs from its module
(imports, constants, further helpers), so the new file imports only third-party libraries and
`tasks.base`, the task's public interface, and the classes the task's interface names (a copied
class would be another type, which the task would refuse). Two comment lines on top point to
`budgetbench tasks TASK`, which prints the interface the file implements. The result is loaded
and checked against the task's method interface before it is written.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import re
import textwrap
import types
from pathlib import Path

from harness.errors import InputError

PUBLIC_MODULES = ("tasks.base",)
CONSTANT_TYPES = (int, float, str, bool, type(None), tuple, frozenset)


def new_method_source(task: str, reference: str | None) -> str:
    """The source of a new method for `task`, starting from the reference method `reference`
    (default: the task's first reference method)."""
    from harness.registry import load_task
    from harness.run.methods import reference_method_path

    task_cls = load_task(task)
    name = reference or task_cls.reference_methods[0]
    if name not in task_cls.reference_methods:
        known = ", ".join(task_cls.reference_methods)
        raise InputError(f"task {task!r} has no reference method {name!r} (methods: {known})")
    source = reference_method_path(task_cls, name).read_text()
    header = (
        f"# A new method for task {task!r}, started from reference method {name!r}"
        f" (`budgetbench new-method`):\n# what it imported from the task's internal modules is"
        " copied in below.\n"
    )
    interface = (
        f"# Its interface (functions, constants, reserved hyperparameters): `budgetbench tasks"
        f" {task}`.\n# Each function gets `run` (tasks.base.MethodRun) last: read"
        " run.hyperparameters, not globals.\n"
    )
    return interface + _inline_internal_imports(source, header)


def _inline_internal_imports(source: str, header: str) -> str:
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    defined = _top_level_names(tree)
    imports: list[str] = []
    inlined: list[str] = []
    seen: set[tuple[str, str]] = set()
    qualified: list[str] = []  # `from tasks.t import helpers` used as `helpers.name`
    for node in reversed(tree.body):  # bottom up, so earlier line numbers stay valid
        if not _is_internal(node):
            continue
        assert isinstance(node, ast.ImportFrom) and node.module
        module = importlib.import_module(node.module)
        for alias in node.names:
            if alias.asname and alias.asname != alias.name:
                raise InputError(f"cannot copy `{alias.name} as {alias.asname}` from {node.module}")
            submodule = _submodule(module, alias.name)
            if submodule is None:
                _collect(module, alias.name, defined, imports, inlined, seen)
                continue
            for used in _attributes_used(tree, alias.name):
                _collect(submodule, used, defined, imports, inlined, seen)
            qualified.append(alias.name)
        lines[node.lineno - 1 : node.end_lineno] = []
    body_start = _first_code_line(tree, lines)
    copied = "".join(f"{line}\n" for line in dict.fromkeys(imports))
    helpers = "\n\n\n".join(dict.fromkeys(inlined))
    if not copied and not helpers:
        return source
    block = "\n" + header + copied + ("\n\n" + helpers + "\n\n" if helpers else "")
    body = "".join(lines[body_start:])
    for name in qualified:  # `helpers.name(...)` now calls the copied `name`
        body = re.sub(rf"(?<![\w./]){name}\.(?=[A-Za-z_])", "", body)
    return "".join(lines[:body_start]) + block + body


def _submodule(package: types.ModuleType, name: str) -> types.ModuleType | None:
    """`package.name` when it is a submodule (imported here if need be), else None."""
    value = getattr(package, name, None)
    if isinstance(value, types.ModuleType):
        return value
    if value is None and hasattr(package, "__path__"):
        try:
            return importlib.import_module(f"{package.__name__}.{name}")
        except ModuleNotFoundError:
            return None
    return None


def _attributes_used(tree: ast.Module, module_alias: str) -> list[str]:
    """The attributes read from the name `module_alias` (`helpers.x` -> x), in source order."""
    used = [
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == module_alias
    ]
    return list(dict.fromkeys(used))


def _collect(
    module: types.ModuleType,
    name: str,
    defined: set[str],
    imports: list[str],
    inlined: list[str],
    seen: set[tuple[str, str]],
) -> None:
    """Add `name` of `module` (and, first, what it uses from the module) to the new file."""
    if (module.__name__, name) in seen or name in defined:
        return
    seen.add((module.__name__, name))
    value = getattr(module, name)
    if isinstance(value, types.ModuleType):
        imports.append(_import_line(value, name))
        return
    if isinstance(value, CONSTANT_TYPES):
        inlined.append(f"{name} = {value!r}")
        return
    if not (inspect.isfunction(value) or inspect.isclass(value)):
        raise InputError(f"cannot copy {module.__name__}.{name} (a {type(value).__name__})")
    home = importlib.import_module(value.__module__)
    public = not value.__module__.startswith("tasks.") or value.__module__ in PUBLIC_MODULES
    if public or inspect.isclass(value):
        # A class is imported, never copied: a copy would be another type, and a task checks what
        # a method returns by type (cramming's `model_config` must return its `EncoderConfig`).
        imports.append(f"from {value.__module__} import {name}")
        return
    code = textwrap.dedent(inspect.getsource(value))
    for used in sorted(_free_names(code)):
        if used in vars(builtins) or used == name or not hasattr(home, used):
            continue
        _collect(home, used, defined, imports, inlined, seen)
    inlined.append(code.rstrip())


def _import_line(module: types.ModuleType, alias: str) -> str:
    if module.__name__.startswith("tasks.") and module.__name__ not in PUBLIC_MODULES:
        raise InputError(f"cannot copy the internal module {module.__name__}")
    head, _, tail = module.__name__.rpartition(".")
    if alias == module.__name__:
        return f"import {module.__name__}"
    if head and tail == alias:
        return f"from {head} import {tail}"
    return f"import {module.__name__} as {alias}"


def _free_names(code: str) -> set[str]:
    """Names a function or class reads that it does not bind itself (an over-approximation:
    any Name loaded anywhere in it)."""
    tree = ast.parse(code)
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _top_level_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom) and not _is_internal(node):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def _is_internal(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.ImportFrom)
        and bool(node.module)
        and str(node.module).startswith("tasks.")
        and node.module not in PUBLIC_MODULES
    )


def _first_code_line(tree: ast.Module, lines: list[str]) -> int:
    """The index of the line after the module's imports (where copied helpers go)."""
    last_import = 0
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom) and not _is_internal(node):
            last_import = node.end_lineno or node.lineno
    if last_import:
        removed = sum(
            (node.end_lineno or node.lineno) - node.lineno + 1
            for node in tree.body
            if _is_internal(node) and node.lineno <= last_import
        )
        return last_import - removed
    docstring = ast.get_docstring(tree, clean=False)
    if docstring is not None and tree.body:
        return tree.body[0].end_lineno or 0
    return 0


def write_new_method(task: str, reference: str | None, output: Path) -> str:
    """Write the new method to `output` (which must not exist), after checking it loads as a
    method of `task` and imports nothing internal; returns its method name."""
    from harness.registry import load_task
    from harness.run.methods import load_method

    if output.exists():
        raise InputError(f"{output} exists: choose another file name (nothing was overwritten)")
    if output.suffix != ".py":
        raise InputError(f"{output}: a method file must end in .py")
    source = new_method_source(task, reference)
    # A reference that names itself (NAME = "mutants") must not lend its name to the copy.
    source = re.sub(r"(?m)^NAME\s*=.*$", f"NAME = {output.stem.replace('_', '-')!r}", source)
    leftovers = [
        f"{node.module}.{alias.name}"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom) and _is_internal(node)
        for alias in node.names
        if not inspect.isclass(getattr(importlib.import_module(str(node.module)), alias.name))
    ]
    assert not leftovers, leftovers
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(source)
    try:
        method = load_method(load_task(task), str(output))
    except Exception:
        output.unlink()
        raise
    return method.name
