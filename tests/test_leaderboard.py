"""Leaderboard grouping and ranking, on real runs from a real store."""

from __future__ import annotations

import pytest
from helpers import run_probe
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from harness.score.boards import MetricColumn, PaperReference, build_leaderboards
from harness.store.models import Run

COLUMNS = [
    MetricColumn("matmul_fp32_tflops", "TFLOP/s", True),
    MetricColumn("attention_tflops", "TFLOP/s", True),
]
PAPER = PaperReference("A published number", "Somebody et al. 2024", {"matmul_fp32_tflops": 1.0})


def _runs(store) -> list[Run]:
    with store.session() as session:
        return list(
            session.scalars(
                select(Run).options(selectinload(Run.measurements), selectinload(Run.machine))
            )
        )


def test_rows_group_seeds_rank_by_the_first_metric_and_keep_failures_apart(sqlite_url, tmp_path):
    store, outcomes = run_probe(sqlite_url, seeds=(0, 1, 2))
    failing = tmp_path / "failing.py"
    failing.write_text(
        "def matmul(a, b, run): return a @ b\n"
        "def attention(q, k, v, run): raise RuntimeError('x')\n"
        "def copy(dst, src, run): dst.copy_(src)\n"
    )
    run_probe(sqlite_url, str(failing))
    spec_hash = _runs(store)[0].task_spec_hash
    (board,) = build_leaderboards(
        _runs(store), {"probe": COLUMNS}, {("probe", "smoke"): spec_hash}, {"probe": [PAPER]}
    )
    assert board.is_standard and board.references == [PAPER]
    assert [c.name for c in board.columns] == ["matmul_fp32_tflops", "attention_tflops"]
    (ranked,) = board.ranked_rows
    (unranked,) = board.unranked_rows
    assert ranked.method_name == "eager" and ranked.succeeded == 3
    values = sorted(o.scalars["matmul_fp32_tflops"][0] for o in outcomes)
    summary = ranked.metrics["matmul_fp32_tflops"]
    assert (summary.low, summary.value, summary.high, summary.n) == (
        values[0],
        values[1],
        values[2],
        3,
    )
    assert unranked.method_name == "failing" and (unranked.succeeded, unranked.failed) == (0, 1)


def test_references_only_beside_the_standard_settings(sqlite_url):
    store, _ = run_probe(sqlite_url)
    (board,) = build_leaderboards(
        _runs(store), {"probe": COLUMNS}, {("probe", "smoke"): "other"}, {"probe": [PAPER]}
    )
    assert not board.is_standard and board.references == []
    assert board.slug == f"smoke-{board.task_spec_hash[:12]}"


def test_references_need_a_metric_the_board_shows_and_headline_columns_rank(sqlite_url):
    store, _ = run_probe(sqlite_url, seeds=(0, 1))
    elsewhere = PaperReference("A GLUE number", "Elsewhere 2023", {"glue_average": 80.0})
    columns = [
        MetricColumn("attention_tflops", "TFLOP/s", True, headline=False),
        MetricColumn("matmul_fp32_tflops", "TFLOP/s", True),
    ]
    spec_hash = _runs(store)[0].task_spec_hash
    (board,) = build_leaderboards(
        _runs(store),
        {"probe": columns},
        {("probe", "smoke"): spec_hash},
        {"probe": [elsewhere, PAPER]},
    )
    assert board.references == [PAPER]
    assert [c.name for c in board.headline_columns] == ["matmul_fp32_tflops"]
    assert set(board.rows[0].as_record(board.columns)) >= {
        "attention_tflops_value",
        "matmul_fp32_tflops_value",
    }


def test_a_reference_is_shown_only_beside_the_profiles_it_names(sqlite_url):
    """The paper's numbers stand beside a board only where the profile matches the paper's
    conditions (cramming's GLUE averages: `full` alone)."""
    store, _ = run_probe(sqlite_url)
    spec_hash = _runs(store)[0].task_spec_hash
    elsewhere = PaperReference(
        "Full only", "Paper", {"matmul_fp32_tflops": 1.0}, profiles=("full",)
    )
    here = PaperReference("Smoke too", "Paper", {"matmul_fp32_tflops": 2.0}, profiles=("smoke",))
    (board,) = build_leaderboards(
        _runs(store),
        {"probe": COLUMNS},
        {("probe", "smoke"): spec_hash},
        {"probe": [elsewhere, here]},
    )
    assert board.references == [here]


def test_crammings_paper_references_are_declared_for_the_full_profile_only(tmp_path, monkeypatch):
    from harness.errors import InputError
    from harness.score.tasks import task_infos
    from harness.spec import load_spec

    _, _, references = task_infos({"cramming"})
    assert references["cramming"] and all(r.profiles == ("full",) for r in references["cramming"])

    spec = (load_spec("cramming").path).read_text()
    header, _, _ = spec.partition("[[references]]")
    crafted = [
        spec.replace('profiles = ["full"]', profiles)
        for profiles in ('profiles = ["fulll"]', 'profiles = "full"', 'profiles = [["full"]]')
    ] + [header.replace("[tolerance]", 'references = ["a paper"]\n[tolerance]', 1)]
    (tmp_path / "v1").mkdir()
    monkeypatch.setenv("BUDGETBENCH_SUITE_DIR", str(tmp_path))
    for text in crafted:
        (tmp_path / "v1" / "cramming.toml").write_text(text)
        with pytest.raises(InputError, match="references"):
            load_spec("cramming", "v1")
