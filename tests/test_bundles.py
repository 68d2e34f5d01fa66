"""Bundles: exact round trips, idempotent imports, and bad bundles that change nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import assert_one_line_error, run_cli
from helpers import run_probe
from sqlalchemy import func, select

from harness.errors import InputError
from harness.store import open_store
from harness.store.models import Run
from harness.store.queries import RunFilter
from harness.submit.bundles import (
    build_bundle,
    content_hash,
    import_bundles,
    read_bundle,
    write_bundle,
)

FAILING = """
import torch
def matmul(a, b, run): return a @ b
def attention(q, k, v, run): raise RuntimeError("no attention today")
def copy(dst, src, run): dst.copy_(src)
"""


@pytest.fixture
def source_bundle(tmp_path) -> Path:
    """A bundle of two succeeded runs and one failed run, from a database of its own."""
    source = f"sqlite:///{tmp_path / 'source.db'}"
    run_probe(source, seeds=(0, 1))
    method = tmp_path / "failing.py"
    method.write_text(FAILING)
    run_probe(source, str(method))
    path = tmp_path / "bundle.json"
    write_bundle(build_bundle(open_store(source), RunFilter()), path)
    return path


def count_runs(url: str) -> int:
    with open_store(url).session() as session:
        return session.scalar(select(func.count()).select_from(Run))


def without_created_at(bundle: dict) -> dict:
    return {k: v for k, v in bundle.items() if k != "created_at"}


def test_export_then_import_reproduces_the_runs_exactly(source_bundle, db_url):
    result = import_bundles(open_store(db_url), [source_bundle])
    assert (result.runs_added, result.runs_already_present, result.machines_added) == (3, 0, 1)
    original = json.loads(source_bundle.read_text())
    copy = build_bundle(open_store(db_url), RunFilter())
    assert without_created_at(copy) == without_created_at(original)
    statuses = sorted(run["status"] for run in copy["runs"])
    assert statuses == ["failed", "succeeded", "succeeded"]


def test_importing_twice_adds_nothing(source_bundle, db_url):
    store = open_store(db_url)
    import_bundles(store, [source_bundle])
    again = import_bundles(store, [source_bundle])
    assert (again.runs_added, again.runs_already_present, again.machines_added) == (0, 3, 0)
    assert count_runs(db_url) == 3


def test_cli_export_import_round_trip(source_bundle, tmp_path):
    target = f"sqlite:///{tmp_path / 'target.db'}"
    result = run_cli("import", str(source_bundle), "--db", target, check=True)
    assert "imported 3 runs (0 already present), 1 new machines" in result.stdout
    exported = tmp_path / "again.json"
    # --include-private: the exact record; a default export leaves out host, user and paths.
    run_cli("export", "--db", target, "-o", str(exported), "--include-private", check=True)
    assert without_created_at(json.loads(exported.read_text())) == without_created_at(
        json.loads(source_bundle.read_text())
    )
    filtered = tmp_path / "failed.json"
    run_cli("export", "--db", target, "--status", "failed", "-o", str(filtered), check=True)
    assert [r["status"] for r in json.loads(filtered.read_text())["runs"]] == ["failed"]


def _tamper(path: Path, change, rehash: bool = False) -> Path:
    bundle = json.loads(path.read_text())
    change(bundle)
    if rehash:
        bundle["sha256"] = content_hash(bundle)
    out = path.with_name("tampered.json")
    out.write_text(json.dumps(bundle))
    return out


def _set_value(bundle):
    bundle["runs"][0]["measurements"][0]["value"] *= 2


def _machine_key(bundle):
    bundle["machines"][0]["hardware_key"] = "0" * 16


def _orphan_run(bundle):
    bundle["runs"][0]["machine_id"] = "f" * 16


def _duplicate_measurement(bundle):
    bundle["runs"][0]["measurements"].append(dict(bundle["runs"][0]["measurements"][0]))


def _extra_field(bundle):
    bundle["runs"][0]["secret"] = 1


def _running(bundle):
    bundle["runs"][0]["status"] = "running"


def _newer(bundle):
    bundle["format_version"] = 99


def _bad_time(bundle):
    bundle["runs"][0]["started_at"] = "yesterday"


@pytest.mark.parametrize(
    ("change", "rehash", "message"),
    [
        (_set_value, False, "checksum mismatch"),
        (_machine_key, True, "keys do not match its fingerprint"),
        (_orphan_run, True, "is not in the bundle"),
        (_duplicate_measurement, True, "a measurement name appears twice"),
        (_extra_field, True, "Additional properties are not allowed"),
        (_running, True, "is not one of"),
        (_newer, False, "newer than this budgetbench supports"),
        (_bad_time, True, "is not an ISO 8601 time"),
    ],
)
def test_malformed_bundle_is_rejected(source_bundle, change, rehash, message):
    with pytest.raises(InputError, match=message):
        read_bundle(_tamper(source_bundle, change, rehash))


def test_nan_is_not_a_bundle_number(source_bundle):
    text = source_bundle.read_text()
    value = json.loads(text)["runs"][0]["measurements"][0]["value"]
    bad = source_bundle.with_name("nan.json")
    bad.write_text(text.replace(f'"value": {value!r}', '"value": NaN', 1))
    with pytest.raises(InputError, match="NaN is not a number"):
        read_bundle(bad)


def test_truncated_or_tampered_bundle_exits_2_and_changes_nothing(source_bundle, tmp_path):
    target = f"sqlite:///{tmp_path / 'target.db'}"
    run_probe(target)  # something already stored that must survive
    truncated = tmp_path / "truncated.json"
    truncated.write_text(source_bundle.read_text()[: len(source_bundle.read_text()) // 2])
    assert_one_line_error(run_cli("import", str(truncated), "--db", target), 2, "not valid JSON")
    tampered = _tamper(source_bundle, _set_value)
    assert_one_line_error(run_cli("import", str(tampered), "--db", target), 2, "checksum mismatch")
    assert_one_line_error(
        run_cli("import", str(tmp_path / "absent.json"), "--db", target), 2, "cannot read"
    )
    assert count_runs(target) == 1


def test_conflicting_run_aborts_the_whole_import(source_bundle, tmp_path, db_url):
    store = open_store(db_url)
    import_bundles(store, [source_bundle])
    conflicting = _tamper(source_bundle, lambda b: b["runs"][0].update(seed=99), rehash=True)
    fresh = tmp_path / "fresh.json"
    other = f"sqlite:///{tmp_path / 'other.db'}"
    run_probe(other)
    write_bundle(build_bundle(open_store(other), RunFilter()), fresh)
    with pytest.raises(InputError, match="already exists with different content"):
        import_bundles(store, [fresh, conflicting])
    assert count_runs(db_url) == 3  # the good file's run was not half-imported either


def test_running_runs_are_not_exported(sqlite_url, tmp_path):
    store, _ = run_probe(sqlite_url)
    with store.session() as session:
        session.get(Run, session.scalars(select(Run.id)).one()).status = "running"
        session.commit()
    assert build_bundle(store, RunFilter())["runs"] == []
