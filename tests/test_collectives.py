"""The collective-communication probe: gloo on CPU with two ranks under torchrun."""

from __future__ import annotations

import json

import pytest
from conftest import assert_one_line_error, run_cli

from harness.collectives import bus_factor, result


def test_bus_bandwidth_follows_nccl_tests_definitions():
    # nccl-tests doc/PERFORMANCE.md: all-reduce 2(n-1)/n, all-gather (n-1)/n, broadcast 1.
    assert bus_factor("all_reduce", 8) == pytest.approx(1.75)
    assert bus_factor("all_gather", 8) == pytest.approx(0.875)
    assert bus_factor("broadcast", 8) == 1.0
    measured = result("all_reduce", size_bytes=2 * 10**9, ranks=4, backend="nccl", time_s=0.1)
    assert measured.algbw_gbps == pytest.approx(20.0) and measured.busbw_gbps == pytest.approx(30.0)


def test_two_gloo_ranks_measure_every_collective(tmp_path):
    sizes = (4096, 262144)
    output = run_cli(
        "collectives", "--nproc-per-node", "2", "--sizes", ",".join(map(str, sizes)),
        "--iters", "3", "--warmup", "1", "--json", check=True,
    )  # fmt: skip
    rows = json.loads(output.stdout)
    operations = ("all_reduce", "all_gather", "broadcast")
    expected = [(operation, size) for operation in operations for size in sizes]
    assert [(r["operation"], r["size_bytes"]) for r in rows] == expected
    for row in rows:
        assert row["ranks"] == 2 and row["backend"] == "gloo" and row["time_s"] > 0
        assert row["algbw_gbps"] == pytest.approx(row["size_bytes"] / row["time_s"] / 1e9)
        factor = bus_factor(row["operation"], 2)
        assert row["busbw_gbps"] == pytest.approx(row["algbw_gbps"] * factor)
    table = run_cli("collectives", "--sizes", "4096", "--iters", "2", check=True).stdout
    assert "busbw GB/s" in table and "4 KiB" in table and "2 ranks, gloo" in table


@pytest.mark.parametrize(
    "args, message",
    [
        (("--sizes", "1k"), "is not a list of byte counts"),
        (("--device", "cuda", "--nproc-per-node", "64"), "needs 64 GPUs"),
    ],
)
def test_bad_collectives_options_are_one_line_errors(args, message):
    assert_one_line_error(run_cli("collectives", *args), 2, message)
