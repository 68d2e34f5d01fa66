"""Exit codes that never lie: a listing whose filter matches nothing is exit 2 with one line, so a
nightly job cannot mistake "looked at nothing" for "all clear"."""

from __future__ import annotations

import json

import pytest
from conftest import assert_one_line_error, run_cli
from helpers import run_probe


@pytest.fixture
def one_probe_run(tmp_path) -> tuple[str, str]:
    """A store holding one succeeded probe run: (its path, the run id)."""
    db = str(tmp_path / "store.db")
    store, (outcome,) = run_probe(db)
    store.dispose()
    return db, outcome.run_id


@pytest.mark.parametrize(
    "args, message",
    [
        (("runs", "--task", "cramming"), "no runs match task=cramming in sqlite:///"),
        (("runs", "--machine", "zzzz", "--json"), "no runs match machine=zzzz"),
        (("regress", "--machine", "zzzz"), "regress: no succeeded runs match machine=zzzz"),
        (("regress", "--since", "2999-01-01", "--json"), "no succeeded runs match since=2999"),
        (("compare", "method=nothing", "method=eager"), "no succeeded runs match"),
        (("compare", "ffffffff", "method=eager"), "no run with id 'ffffffff'"),
    ],
)
def test_a_filter_that_matches_nothing_is_exit_2(one_probe_run, args, message):
    db, _ = one_probe_run
    result = run_cli(*args, "--db", db)
    assert_one_line_error(result, 2, message)
    assert result.stdout == ""


def test_an_empty_export_is_exit_2_and_writes_no_file(one_probe_run, tmp_path):
    db, _ = one_probe_run
    bundle = tmp_path / "failed.json"
    result = run_cli("export", "--status", "failed", "-o", str(bundle), "--db", db)
    assert_one_line_error(result, 2, "no finished runs match status=failed")
    assert not bundle.exists()
    run_cli("export", "-o", str(bundle), "--db", db, check=True)
    assert len(json.loads(bundle.read_text())["runs"]) == 1


def test_an_empty_store_lists_nothing_with_exit_2(tmp_path):
    db = str(tmp_path / "empty.db")
    assert_one_line_error(run_cli("runs", "--db", db), 2, "no runs stored in sqlite:///")
    assert_one_line_error(run_cli("regress", "--db", db), 2, "nothing to examine")


def test_regress_says_what_it_examined(one_probe_run):
    db, run_id = one_probe_run
    shown = json.loads(run_cli("show", run_id, "--db", db, "--json", check=True).stdout)
    metrics = {m["name"] for m in shown["measurements"]}
    result = run_cli("regress", "--fail-on-regression", "--db", db, check=True)
    assert f"examined {len(metrics)} series: 1 runs on 1 machine(s)" in result.stderr
    assert "no significant changes" in result.stdout
