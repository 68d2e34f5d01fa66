"""Shared fixtures: databases (SQLite always, PostgreSQL when a server is given) and CLI helpers.

PostgreSQL tests run when BUDGETBENCH_TEST_POSTGRES_URL names a server (`.ci/run` starts one);
with BUDGETBENCH_REQUIRE_POSTGRES=1 (set by CI) a missing server fails instead of skipping.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# Settings that make a probe run take well under a second on a 2-core CPU.
FAST_PROBE = (
    "--set", "matmul_size=64",
    "--set", 'matmul_dtypes=["float32"]',
    "--set", "copy_mib=1",
    "--set", "attention_seq_len=32",
    "--set", "warmup=0",
    "--set", "repeats=2",
    "--set", "min_repeat_s=0.001",
)  # fmt: skip

POSTGRES_URL = os.environ.get("BUDGETBENCH_TEST_POSTGRES_URL")


def fast_probe_overrides() -> list[str]:
    return [FAST_PROBE[i + 1] for i in range(0, len(FAST_PROBE), 2)]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped afterwards."""
    if not POSTGRES_URL:
        if os.environ.get("BUDGETBENCH_REQUIRE_POSTGRES") == "1":
            pytest.fail(
                "BUDGETBENCH_REQUIRE_POSTGRES=1 but BUDGETBENCH_TEST_POSTGRES_URL is not set"
            )
        pytest.skip("no PostgreSQL server (set BUDGETBENCH_TEST_POSTGRES_URL)")
    import psycopg

    name = f"bb_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request) -> str:
    """Every store test runs against both backends."""
    return request.getfixturevalue(f"{request.param}_url")


def run_cli(
    *args: str, check: bool = False, env: dict[str, str] | None = None, timeout: float = 300
):
    """Run the real `budgetbench` entry point in a subprocess (exit codes, one-line errors)."""
    result = subprocess.run(
        [sys.executable, "-c", "from harness.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"budgetbench {' '.join(args)} exited {result.returncode}:\n{result.stderr}"
        )
    return result


def cli_json(*args: str):
    return json.loads(run_cli(*args, "--json", check=True).stdout)


def assert_one_line_error(result, exit_code: int = 2, contains: str = "") -> None:
    assert result.returncode == exit_code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got:\n{result.stderr}"
    assert "Traceback" not in result.stderr
    assert contains in lines[0], lines[0]
