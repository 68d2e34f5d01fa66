"""Loading, validating and hashing submitted methods.

A method is named by a reference name (`tasks/<task>/methods/<name>.py`), a path to a `.py`
file, or an importable module. It is imported and checked against the task's method interface
(`tasks/<task>/interface.py`, read by `tasks.base.MethodInterface`) *before* any run starts, so a
broken submission fails in a second with one line naming the file: every required function
present and callable with the stub's parameters (by position and by name), optional ones too
where defined, module constants of their declared types, reserved hyperparameters within their
rules.

Hyperparameters are the module's `HYPERPARAMETERS` dict; `--set hp.NAME=VALUE` overrides
existing keys only. The effective dict reaches the method as `run.hyperparameters` (a
`tasks.base.MethodRun`, the last argument of every call); the module is never written to, so a
function that read the module's dict would silently ignore the overrides, and a method whose
functions name `HYPERPARAMETERS` is refused.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from harness.errors import InputError
from harness.spec import canonical_json, sha256_hex
from tasks.base import Method, MethodInterface, MethodRun, Task, check_constant


def method_hash(source_files: tuple[Path, ...], hyperparameters: Mapping[str, Any]) -> str:
    """SHA-256 over each source file's name and bytes plus the canonical hyperparameters."""
    parts = []
    for path in source_files:
        parts.append(path.name.encode() + b"\0" + path.read_bytes())
    parts.append(canonical_json(dict(hyperparameters)).encode())
    return sha256_hex(b"\0\0".join(parts))


def reference_method_path(task_cls: type, name: str) -> Path:
    return task_cls.methods_dir() / f"{name.replace('-', '_')}.py"


def load_method(
    task_cls: type, ref: str, hyperparameter_overrides: Mapping[str, Any] | None = None
) -> Method:
    """Resolve `ref`, import it, check the interface, apply overrides and hash it."""
    is_reference = ref in task_cls.reference_methods
    if is_reference:
        module, sources = _import_file(reference_method_path(task_cls, ref))
    elif ref.endswith(".py") or "/" in ref or Path(ref).is_file():
        path = Path(ref).expanduser()
        if not path.is_file():
            raise InputError(f"method file {ref} does not exist")
        module, sources = _import_file(path.resolve())
    else:
        module, sources = _import_module(task_cls, ref)
    label = str(sources[0]) if len(sources) == 1 else module.__name__
    interface = task_cls.method_interface
    _check_functions(interface, module, label)
    hyperparameters = _effective_hyperparameters(module, label, hyperparameter_overrides or {})
    constants = _check_constants(interface, module, label)
    _check_reserved(interface, hyperparameters, label)
    name = constants.get("NAME") or (ref if is_reference else _default_name(module, sources))
    doc = inspect.getdoc(module) or ""
    description = str(constants.get("DESCRIPTION") or doc.split("\n\n")[0]).strip()
    return Method(
        name=str(name),
        module=module,
        hyperparameters=hyperparameters,
        description=description,
        source_files=sources,
        method_hash=method_hash(sources, hyperparameters),
        is_reference=is_reference,
        constants=constants,
    )


def _default_name(module: ModuleType, sources: tuple[Path, ...]) -> str:
    if len(sources) == 1 and sources[0].name != "__init__.py":
        return sources[0].stem.replace("_", "-")
    return module.__name__


def _import_file(path: Path) -> tuple[ModuleType, tuple[Path, ...]]:
    module_name = f"budgetbench_method_{sha256_hex(str(path))[:12]}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise InputError(f"method file {path}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        del sys.modules[module_name]
        raise InputError(
            f"method file {path}: syntax error on line {exc.lineno}: {exc.msg}"
        ) from exc
    except Exception as exc:
        del sys.modules[module_name]
        raise InputError(
            f"method file {path}: importing it raised {type(exc).__name__}: {exc}"
        ) from exc
    return module, (path,)


def _import_module(task_cls: type, name: str) -> tuple[ModuleType, tuple[Path, ...]]:
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and name.startswith(exc.name):
            known = ", ".join(task_cls.reference_methods)
            raise InputError(
                f"unknown method {name!r} for task {task_cls.name!r} (reference methods: {known};"
                " or give a .py path or an importable module)"
            ) from exc
        raise InputError(f"method module {name}: importing it raised {exc}") from exc
    except SyntaxError as exc:
        raise InputError(
            f"method module {name}: syntax error in {exc.filename} on line {exc.lineno}: {exc.msg}"
        ) from exc
    except Exception as exc:
        raise InputError(
            f"method module {name}: importing it raised {type(exc).__name__}: {exc}"
        ) from exc
    file = getattr(module, "__file__", None)
    if file is None:
        raise InputError(f"method module {name}: has no source file to hash")
    path = Path(file).resolve()
    if path.name == "__init__.py":  # a package: every Python file in it is part of the method
        return module, tuple(sorted(path.parent.rglob("*.py")))
    return module, (path,)


def _check_functions(interface: MethodInterface, module: ModuleType, label: str) -> None:
    for function in interface.functions:
        candidate = getattr(module, function.name, None)
        if candidate is None:
            if function.optional:
                continue
            raise InputError(
                f"method {label}: missing function {function.signature}"
                f" required by the interface ({interface.module})"
            )
        if not callable(candidate):
            raise InputError(f"method {label}: {function.name!r} is not a function")
        try:
            signature = inspect.signature(candidate)
        except ValueError:  # builtins without a signature: accept, they fail loudly at call
            continue
        try:  # the task may pass the arguments by position or by name
            signature.bind(*function.parameters)
            signature.bind(**{parameter: None for parameter in function.parameters})
        except TypeError:
            raise InputError(
                f"method {label}: {function.name}{signature} does not accept the arguments"
                f" ({', '.join(function.parameters)}) of {function.signature}"
            ) from None
    reader = next(
        (name for name, value in vars(module).items() if _reads_hyperparameters(value, module)),
        None,
    )
    if reader is not None:
        raise InputError(
            f"method {label}: {reader} reads the module's HYPERPARAMETERS, which never holds the"
            " --set overrides; read run.hyperparameters instead"
        )


def _reads_hyperparameters(value: Any, module: ModuleType) -> bool:
    """Whether a function (or a class's functions) defined in `module` names the global
    `HYPERPARAMETERS` anywhere in its code, nested functions included."""
    if inspect.isclass(value) and value.__module__ == module.__name__:
        return any(_reads_hyperparameters(v, module) for v in vars(value).values())
    if isinstance(value, staticmethod | classmethod):
        value = value.__func__
    if not (inspect.isfunction(value) and value.__module__ == module.__name__):
        return False
    codes = [value.__code__]
    while codes:
        code = codes.pop()
        if "HYPERPARAMETERS" in code.co_names:
            return True
        codes += [c for c in code.co_consts if inspect.iscode(c)]
    return False


def _check_constants(interface: MethodInterface, module: ModuleType, label: str) -> dict[str, Any]:
    """Each declared constant checked against its type; returns the effective values."""
    effective = {}
    for constant in interface.constants:
        present = hasattr(module, constant.name)
        value = getattr(module, constant.name, constant.default)
        problem = check_constant(constant, present, value)
        if problem is not None:
            raise InputError(f"method {label}: {problem}")
        effective[constant.name] = value
    return effective


def _check_reserved(
    interface: MethodInterface, hyperparameters: Mapping[str, Any], label: str
) -> None:
    for key, rule in interface.reserved.items():
        problem = rule.problem(key in hyperparameters, hyperparameters.get(key))
        if problem is not None:
            raise InputError(f"method {label}: HYPERPARAMETERS[{key!r}] {problem}")


def _effective_hyperparameters(
    module: ModuleType, label: str, overrides: Mapping[str, Any]
) -> dict[str, Any]:
    declared = getattr(module, "HYPERPARAMETERS", {})
    if not isinstance(declared, Mapping) or not all(isinstance(k, str) for k in declared):
        raise InputError(f"method {label}: HYPERPARAMETERS must be a dict with string keys")
    effective = dict(declared)
    for key, value in overrides.items():
        if key not in effective:
            known = ", ".join(sorted(effective)) or "none"
            raise InputError(f"method {label} has no hyperparameter {key!r} (declared: {known})")
        effective[key] = value
    try:
        canonical_json(effective)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"method {label}: HYPERPARAMETERS must be JSON-serializable: {exc}"
        ) from exc
    return effective


def interface_text(task_cls: type, width: int = 100) -> str:
    """`budgetbench tasks TASK`: the task's method interface as a newcomer reads it, from the
    stub module itself: the module's docstring, each function's typed signature and docstring,
    the `run` argument's fields, the module constants and the reserved hyperparameters."""
    interface = task_cls.method_interface
    out = [f"Task {task_cls.name}: {task_cls.description}"]
    out.append(f"Reference methods: {', '.join(task_cls.reference_methods)}")
    out.append(
        f"  (copy one to start from: budgetbench new-method {task_cls.name} --from NAME -o FILE)"
    )
    out += ["", f"Method interface ({interface.module})", "", interface.doc, ""]
    out.append("Functions (the last argument of each is `run`, a tasks.base.MethodRun)")
    for function in interface.functions:
        mark = "  [optional]" if function.optional else ""
        signature = function.typed_signature
        if len(signature) + len(mark) + 2 > width:  # one parameter a line, as ruff formats it
            head, _, rest = signature.partition("(")
            parameters, _, returns = rest.rpartition(")")
            lines = [f"      {p.strip()}," for p in _split_parameters(parameters)]
            signature = "\n".join([f"{head}(", *lines, f"  ){returns}"])
        out += ["", f"  {signature}{mark}", _indented(function.doc, 6, width)]
    out += ["", "The `run` argument: tasks.base.MethodRun", _indented(MethodRun.__doc__, 2, width)]
    out += ["", "  Fields:"]
    for field in dataclasses.fields(MethodRun):
        out.append(f"    {field.name}: {field.type}")
    out += ["", "Module constants a method may define"]
    for constant in interface.constants:
        if constant.required:
            head = f"  {constant.name}: {constant.annotation}  [required]"
        elif constant.default is not None:
            head = f"  {constant.name}: {constant.annotation} = {constant.default!r}"
        else:
            head = f"  {constant.name}: {constant.annotation}"
        out += [head, _indented(constant.doc, 6, width)]
    out += ["", "Reserved hyperparameters (HYPERPARAMETERS keys the task reads itself)"]
    if not interface.reserved:
        out.append("  none")
    for key, rule in interface.reserved.items():
        if rule.forbidden:
            head = f"  {key}: must not be set"
        else:
            need = "required" if rule.required else f"optional, default {rule.default!r}"
            head = f"  {key}: {rule.describe()}  [{need}]"
        out += [head, _indented(rule.doc, 6, width)]
    if task_cls.check_method is not Task.check_method:
        out += ["", "Checked before every run besides the above (the task's check_method)"]
        out.append(_indented(inspect.getdoc(task_cls.check_method), 2, width))
    return "\n".join(out)


def _split_parameters(parameters: str) -> list[str]:
    """Split a parameter list at its top-level commas (not those inside `dict[str, Any]`)."""
    parts, depth, current = [], 0, ""
    for character in parameters:
        depth += {"[": 1, "(": 1, "]": -1, ")": -1}.get(character, 0)
        if character == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += character
    return [*parts, current] if current.strip() else parts


def _indented(text: str | None, indent: int, width: int) -> str:
    """Each paragraph of `text` re-wrapped to `width` and indented."""
    paragraphs = inspect.cleandoc(text or "").split("\n\n")
    prefix = " " * indent
    return "\n\n".join(
        textwrap.fill(" ".join(p.split()), width, initial_indent=prefix, subsequent_indent=prefix)
        for p in paragraphs
        if p.strip()
    )


def interface_json(task_cls: type) -> dict[str, Any]:
    """`budgetbench tasks TASK --json`: the same interface as data."""
    interface = task_cls.method_interface
    return {
        "task": task_cls.name,
        "module": interface.module,
        "doc": interface.doc,
        "functions": [
            {
                "name": f.name,
                "parameters": list(f.parameters),
                "signature": f.typed_signature,
                "optional": f.optional,
                "doc": f.doc,
            }
            for f in interface.functions
        ],
        "constants": [
            {
                "name": c.name,
                "type": c.annotation,
                "required": c.required,
                "default": c.default,
                "doc": c.doc,
            }
            for c in interface.constants
        ],
        "reserved_hyperparameters": [
            {
                "name": key,
                "rule": "must not be set" if rule.forbidden else f"must be {rule.describe()}",
                "required": rule.required,
                "default": rule.default,
                "doc": rule.doc,
            }
            for key, rule in interface.reserved.items()
        ],
    }
