"""The store owns its queries: outside `harness.store` no module imports SQLAlchemy or the ORM
models, so every read and write goes through a named function in `harness.store` and everyone
else sees runs as `RunRecord`s (issue 17)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STORE = ROOT / "harness" / "store"
FORBIDDEN = ("sqlalchemy", "harness.store.models")


def _imported_modules(path: Path) -> list[str]:
    """Every module `path` imports, at any depth (function-level imports included)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _breaks_boundary(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in FORBIDDEN)


def test_no_module_outside_the_store_imports_sqlalchemy_or_the_orm_models():
    sources = [
        path
        for folder in ("harness", "tasks")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if STORE not in path.parents
    ]
    assert len(sources) > 50  # the walk found the code
    offenders = {
        str(path.relative_to(ROOT)): bad
        for path in sources
        if (bad := [m for m in _imported_modules(path) if _breaks_boundary(m)])
    }
    assert offenders == {}


def test_the_boundary_check_sees_function_level_and_from_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "def f():\n    from sqlalchemy.orm import Session\n"
        "from harness.store import models\nimport harness.store.queries\n"
    )
    found = {m for m in _imported_modules(sample) if _breaks_boundary(m)}
    assert found == {"sqlalchemy.orm", "sqlalchemy.orm.Session", "harness.store.models"}
