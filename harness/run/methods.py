"""Loading, validating and hashing submitted methods.

A method is named by a reference name (`tasks/<task>/methods/<name>.py`), a path to a `.py`
file, or an importable module. It is imported and checked against the task's method interface
*before* any run starts, so a broken submission fails in a second with one line naming the file.

Hyperparameters are the module's `HYPERPARAMETERS` dict; `--set hp.NAME=VALUE` overrides
existing keys only. The harness writes the effective dict back to `module.HYPERPARAMETERS`
before the run, so method code reads its settings from there.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from harness.errors import InputError
from harness.spec import canonical_json, sha256_hex
from tasks.base import Method


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
    _check_interface(task_cls, module, label)
    hyperparameters = _effective_hyperparameters(module, label, hyperparameter_overrides or {})
    module.HYPERPARAMETERS = hyperparameters
    name = getattr(module, "NAME", None) or (
        ref if is_reference else _default_name(module, sources)
    )
    doc = inspect.getdoc(module) or ""
    description = str(getattr(module, "DESCRIPTION", "") or doc.split("\n\n")[0]).strip()
    return Method(
        name=str(name),
        module=module,
        hyperparameters=hyperparameters,
        description=description,
        source_files=sources,
        method_hash=method_hash(sources, hyperparameters),
        is_reference=is_reference,
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


def _check_interface(task_cls: type, module: ModuleType, label: str) -> None:
    for function in task_cls.method_interface:
        candidate = getattr(module, function.name, None)
        if candidate is None:
            raise InputError(
                f"method {label}: missing function {function.signature}"
                f" required by task {task_cls.name!r}"
            )
        if not callable(candidate):
            raise InputError(f"method {label}: {function.name!r} is not a function")
        try:
            inspect.signature(candidate).bind(*function.parameters)
        except TypeError:
            raise InputError(
                f"method {label}: {function.name}{inspect.signature(candidate)} does not accept"
                f" the arguments ({', '.join(function.parameters)}) of {function.signature}"
            ) from None
        except ValueError:  # builtins without a signature: accept, they fail loudly at call
            continue


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
