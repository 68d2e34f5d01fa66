"""Scoring has one home (issue 17): `harness.score` computes, `harness.publish` only renders, and
nothing below the site imports it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

HARNESS = Path(__file__).resolve().parents[1] / "harness"


def _harness_imports(path: Path) -> set[str]:
    """Every `harness.*` module a file imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("harness"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("harness")}
    return found


def test_nothing_below_the_site_imports_it():
    for package in ("score", "submit", "store", "run"):
        for path in (HARNESS / package).rglob("*.py"):
            publish = {m for m in _harness_imports(path) if m.startswith("harness.publish")}
            assert not publish, f"{path.relative_to(HARNESS)} imports {publish}"


def test_the_rules_import_no_other_scoring_module():
    """The rules are the bottom of scoring: boards and the suite score import them, never the
    other way round (they used to import each other)."""
    assert not _harness_imports(HARNESS / "score" / "rules.py")


def test_suite_score_command_does_not_load_the_site(tmp_path):
    code = (
        "import sys; from click.testing import CliRunner; from harness.cli import cli; "
        f"result = CliRunner().invoke(cli, ['suite', 'score', '--db', {str(tmp_path / 's.db')!r},"
        " '--json']); "
        "assert result.exit_code == 0, result.output; "
        "print(sorted(m for m in sys.modules if m.startswith('harness.publish')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
