"""Method code is code: `run --confine` and `verify --rerun` run it in a bubblewrap sandbox.

On main, the hostile method below wrote outside its directory, read a secret and reached the
network from the harness process, and `run` had no `--confine`."""

from __future__ import annotations

import socket
import sqlite3

import pytest
from conftest import fast_probe_overrides, run_cli

HOSTILE = '''"""Reads a secret into its description, writes a file, phones home: all at import."""
import socket
from pathlib import Path

import torch.nn.functional as F

try:
    SECRET = Path({secret!r}).read_text()
except OSError as exc:
    SECRET = f"unreadable ({{type(exc).__name__}})"
DESCRIPTION = "secret: " + SECRET
try:
    Path({marker!r}).write_text("escaped")
except OSError:
    pass
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=2).close()
except OSError:
    pass


def matmul(a, b, run):
    return a @ b


def attention(q, k, v, run):
    return F.scaled_dot_product_attention(q, k, v)


def copy(dst, src, run):
    dst.copy_(src)
'''


@pytest.fixture
def hostile(tmp_path):
    secret = tmp_path / "home" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("hunter2")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.5)
    method = tmp_path / "methods" / "hostile.py"
    method.parent.mkdir()
    marker = tmp_path / "home" / "escaped.txt"
    method.write_text(
        HOSTILE.format(secret=str(secret), marker=str(marker), port=listener.getsockname()[1])
    )
    yield method, marker, listener
    listener.close()


def _connected(listener: socket.socket) -> bool:
    try:
        connection, _ = listener.accept()
    except TimeoutError:
        return False
    connection.close()
    return True


def _flags() -> list[str]:
    return [f for value in fast_probe_overrides() for f in ("--set", value)]


def test_a_confined_method_cannot_read_write_or_phone_home(hostile, tmp_path):
    method, marker, listener = hostile
    db = tmp_path / "store.db"
    result = run_cli(
        "run", "probe", "--method", str(method), "--confine", "--device", "cpu", *_flags(),
        "--db", str(db),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert not marker.exists()
    assert not _connected(listener)
    with sqlite3.connect(db) as connection:
        ((description, status),) = connection.execute(
            "SELECT method_description, status FROM runs"
        ).fetchall()
    assert status == "succeeded"
    assert "hunter2" not in description and "unreadable (FileNotFoundError)" in description


def test_the_same_method_unconfined_does_all_three(hostile, tmp_path):
    """Why confinement exists: without it the method has the user's rights."""
    method, marker, listener = hostile
    result = run_cli(
        "run", "probe", "--method", str(method), "--device", "cpu", *_flags(),
        "--db", str(tmp_path / "store.db"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert marker.read_text() == "escaped" and _connected(listener)


def test_confine_refuses_other_executors_and_module_methods(tmp_path):
    result = run_cli(
        "run", "probe", "--confine", "--executor", "pool", "--db", str(tmp_path / "s.db")
    )
    assert result.returncode == 2 and "local executor" in result.stderr
    result = run_cli(
        "run", "probe", "--confine", "--method", "os.path", "--db", str(tmp_path / "s.db")
    )
    assert result.returncode == 2 and "one .py file" in result.stderr
