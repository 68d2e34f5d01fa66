"""Hostile numbers, names and files: exit 2 with one line, before anything is stored, and the
same on SQLite and PostgreSQL (issue 13). On main each of these was an internal error, a silent
acceptance, or an acceptance on SQLite that PostgreSQL refused."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from conftest import assert_one_line_error, fast_probe_overrides, run_cli
from helpers import run_probe
from sqlalchemy import func, select

from harness.errors import InputError
from harness.spec import load_spec, resolve_config
from harness.store import open_store
from harness.store.models import Run
from harness.store.queries import RunFilter
from harness.submit.bundles import build_bundle, content_hash, import_bundles, write_bundle
from tasks.probe import ProbeTask


@pytest.fixture(scope="module")
def good_bundle(tmp_path_factory) -> dict:
    """A real bundle of one succeeded probe run."""
    root = tmp_path_factory.mktemp("hostile")
    url = f"sqlite:///{root / 'source.db'}"
    run_probe(url)
    return build_bundle(open_store(url), RunFilter())


def _measurement(bundle: dict) -> dict:
    return bundle["runs"][0]["measurements"][0]


def _artifact(size: int) -> dict:
    return {"name": "log", "uri": "x", "media_type": "text/plain", "size_bytes": size,
            "sha256": "0" * 64}  # fmt: skip


# (what is wrong, change to the bundle, text substitution after dumping, expected message)
ATTACKS = [
    ("1e400", lambda b: _measurement(b).update(value=123456.789), ("123456.789", "1e400"),
     "out of range (not a finite double)"),
    ("10^400 integer", lambda b: b["runs"][0].update(spec_version=10**400), None,
     "is out of range"),
    ("seed 2^70", lambda b: b["runs"][0].update(seed=2**70), None, "is out of range"),
    ("seed 2^40", lambda b: b["runs"][0].update(seed=2**40), None, "seed = 1099511627776"),
    ("artifact 2^64 bytes", lambda b: b["runs"][0].update(artifacts=[_artifact(2**64)]), None,
     "is out of range"),
    ("negative artifact size", lambda b: b["runs"][0].update(artifacts=[_artifact(-1)]), None,
     "size_bytes: -1 is less than the minimum of 0"),
    ("negative duration", lambda b: b["runs"][0].update(wall_s=-5.0), None, "wall_s"),
    ("start after finish", lambda b: b["runs"][0].update(started_at="2100-01-01T00:00:00+00:00"),
     None, "before it started"),
    ("300-char method name", lambda b: b["runs"][0].update(method_name="m" * 300), None,
     "method_name is 300 characters long; the store holds 200"),
    ("10k-char task name", lambda b: b["runs"][0].update(task="t" * 10_000), None,
     "task is 10000 characters long"),
    ("NUL in a name", lambda b: b["runs"][0].update(profile="smo\x00ke"), None,
     "profile 'smo\\x00ke' holds a control character"),
    ("escape in a metric name", lambda b: _measurement(b).update(name="\x1b[31mred"), None,
     "holds a control character"),
    ("NUL in long text", lambda b: b["runs"][0].update(method_description="a\x00b"), None,
     "method_description holds a NUL character"),
    ("NUL in a setting", lambda b: b["runs"][0]["settings"].update(note="a\x00b"), None,
     "settings holds a NUL character"),
]  # fmt: skip


def _hostile_file(good: dict, tmp_path: Path, change, substitution) -> Path:
    bundle = json.loads(json.dumps(good))
    change(bundle)
    bundle["sha256"] = content_hash(bundle)  # a careful forger reseals
    text = json.dumps(bundle)
    if substitution:
        assert substitution[0] in text
        text = text.replace(substitution[0], substitution[1])
    path = tmp_path / "hostile.json"
    path.write_text(text)
    return path


def _count_runs(url: str) -> int:
    with open_store(url).session() as session:
        return session.scalar(select(func.count()).select_from(Run))


@pytest.mark.parametrize(
    ("label", "change", "substitution", "message"), ATTACKS, ids=[a[0] for a in ATTACKS]
)
def test_a_hostile_bundle_is_refused_whole_on_both_backends(
    good_bundle, tmp_path, db_url, label, change, substitution, message
):
    path = _hostile_file(good_bundle, tmp_path, change, substitution)
    store = open_store(db_url)
    with pytest.raises(InputError) as caught:
        import_bundles(store, [path])
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert _count_runs(db_url) == 0


def test_an_artifact_over_2_gib_is_stored_alike_on_both_backends(good_bundle, tmp_path, db_url):
    """PostgreSQL's 32-bit INTEGER refused a 3 GiB checkpoint that SQLite took (revision 0004)."""
    path = _hostile_file(
        good_bundle, tmp_path, lambda b: b["runs"][0].update(artifacts=[_artifact(3 * 2**30)]), None
    )
    assert import_bundles(open_store(db_url), [path]).runs_added == 1


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_import_of_a_hostile_bundle_is_one_line_exit_2(good_bundle, tmp_path, request, backend):
    url = request.getfixturevalue(f"{backend}_url")
    ((_, change, substitution, message),) = [a for a in ATTACKS if a[0] == "300-char method name"]
    path = _hostile_file(good_bundle, tmp_path, change, substitution)
    assert_one_line_error(run_cli("import", str(path), "--db", url), 2, message)
    assert _count_runs(url) == 0


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_method_named_with_300_characters_is_refused_alike_on_both_backends(
    tmp_path, request, backend
):
    url = request.getfixturevalue(f"{backend}_url")
    method = tmp_path / "long.py"
    method.write_text(
        f"NAME = {'m' * 300!r}\n"
        "def matmul(a, b, run): return a @ b\n"
        "def attention(q, k, v, run):\n"
        "    import torch.nn.functional as F\n"
        "    return F.scaled_dot_product_attention(q, k, v)\n"
        "def copy(dst, src, run): dst.copy_(src)\n"
    )
    flags = [f for pair in zip(["--set"] * 7, fast_probe_overrides(), strict=True) for f in pair]
    result = run_cli(
        "run", "probe", "--method", str(method), "--device", "cpu", *flags, "--db", url
    )
    assert_one_line_error(result, 2, "method_name is 300 characters long; the store holds 200")
    assert _count_runs(url) == 0


def test_db_at_a_garbage_file_or_an_unrelated_sqlite_file_is_refused(tmp_path):
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(bytes(range(256)) * 20)
    assert_one_line_error(run_cli("runs", "--db", str(garbage)), 2, "file is not a database")
    unrelated = tmp_path / "notes.db"
    with sqlite3.connect(unrelated) as connection:
        connection.execute("CREATE TABLE notes (text TEXT)")
    assert_one_line_error(run_cli("runs", "--db", str(unrelated)), 2, "not a budgetbench store")
    with sqlite3.connect(unrelated) as connection:
        tables = connection.execute("SELECT name FROM sqlite_master").fetchall()
    assert tables == [("notes",)]  # nothing added to someone else's database
    empty = tmp_path / "empty.db"
    empty.touch()
    # An empty new file is fine: it becomes a store, which holds no runs yet (exit 2 says so).
    assert_one_line_error(run_cli("runs", "--db", str(empty)), 2, "no runs stored")


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("min_repeat_s=1e999", "min_repeat_s is not a finite number (inf)"),
        ("min_repeat_s=nan", "min_repeat_s is not a finite number (nan)"),
        ("matmul_size=-512", "matmul_size = -512 is outside its bounds 1 .. 65536"),
        ("repeats=0", "repeats = 0 is outside its bounds 1"),
    ],
)
def test_settings_outside_their_declared_bounds_fail_before_the_run(setting, message):
    from harness.spec import parse_overrides

    overrides, _ = parse_overrides([setting])
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve_config(ProbeTask, load_spec("probe"), "smoke", overrides)


def test_bad_settings_and_huge_seed_counts_exit_2_and_store_nothing(tmp_path):
    db = str(tmp_path / "store.db")
    result = run_cli("run", "probe", "--set", "matmul_size=-512", "--db", db)
    assert_one_line_error(result, 2, "matmul_size = -512 is outside its bounds")
    result = run_cli("run", "probe", "--seeds", "1000000000", "--db", db, timeout=30)
    assert result.returncode == 2 and "1<=x<=1000" in result.stderr
    assert not Path(db).exists() or _count_runs(f"sqlite:///{db}") == 0


def test_a_good_bundle_still_imports(good_bundle, tmp_path, db_url):
    path = tmp_path / "good.json"
    write_bundle(good_bundle, path)
    assert import_bundles(open_store(db_url), [path]).runs_added == 1
