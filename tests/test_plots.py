"""Every kind of plot the site draws, rendered for real: no raw mathtext, no overlapping tick
labels, a legend and distinct styles for several lines, bands for intervals, honest y axes."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import matplotlib
import pytest

from harness.publish.plots import (
    _STYLE,
    STYLE,
    Line,
    line_plot_figure,
    line_plot_svg,
    overlapping_labels,
)
from tasks.common.plots import log_tick

matplotlib.use("Agg")

START = datetime(2026, 11, 1, tzinfo=timezone.utc)
DAYS = [START + timedelta(days=d) for d in range(8)]
BATCHES = [2.0**k for k in range(4, 16)]

PLOTS = {
    # Steps to target against batch size: log-log over many decades, two methods.
    "log-log sweep": dict(
        lines=[Line("adamw", BATCHES, [20000 / b + 40 for b in BATCHES]),
               Line("lamb", BATCHES, [15000 / b + 30 for b in BATCHES])],
        title="steps to target", x_label="batch", y_label="steps", log_x=True, log_y=True,
    ),
    # Accuracy against k on a log axis with a horizontal-ish ceiling line.
    "log x accuracy": dict(
        lines=[Line("pass@k", [1, 2, 4, 8, 16, 32, 64, 128], [0.3, 0.4, 0.5, 0.55, 0.6, 0.62,
                                                               0.63, 0.64]),
               Line("ceiling", [1, 128], [0.7, 0.7])],
        title="accuracy vs k", x_label="k", y_label="accuracy", log_x=True,
    ),
    # Less than one decade on a log axis: labels on 1, 2 and 5 and still no overlap.
    "narrow log": dict(
        lines=[Line("a", [100, 150, 200, 300, 400], [1, 2, 3, 4, 5])],
        title="narrow", x_label="x", y_label="y", log_x=True,
    ),
    # Machine history: dates, bands from repetitions, software and step marks.
    "history": dict(
        lines=[Line("eager", DAYS, [397, 396, 398, 391, 392, 391, 390, 392],
                    low=[395] * 4 + [389] * 4, high=[399] * 4 + [394] * 4),
               Line("compiled", DAYS, [420, 421, 419, 410, 411, 409, 410, 412])],
        title="probe · standard · matmul_bf16_tflops", x_label="run started (UTC)",
        y_label="TFLOP/s", vertical_markers=[(DAYS[3], "software 3f2a1c"), (DAYS[3], "step -2%")],
    ),
    # A run's training curve.
    "curve": dict(
        lines=[Line("loss", list(range(0, 600, 10)), [8 * 0.99**s + 2 for s in range(0, 600, 10)])],
        title="eval_loss", x_label="step", y_label="nats", y_from_zero=False,
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", list(PLOTS))
def test_each_plot_renders_without_mathtext_or_overlaps(name):
    options = PLOTS[name]
    with matplotlib.rc_context(STYLE):
        figure = line_plot_figure(**options)
        assert overlapping_labels(figure) == []
        axes = figure.axes[0]
        labels = [t.get_text() for t in axes.get_xticklabels() + axes.get_yticklabels()]
        assert [label for label in labels if label], "no tick labels at all"
        for label in labels:
            assert "$" not in label and "mathdefault" not in label, label
        if len(options["lines"]) > 1:
            legend = axes.get_legend()
            assert legend is not None
            styles = {(line.get_linestyle(), line.get_marker()) for line in axes.get_lines()
                      if not line.get_label().startswith("_")}  # fmt: skip
            assert len(styles) >= len(options["lines"])
        if any(line.low is not None for line in options["lines"]):
            assert axes.collections, "the interval band was not drawn"
        if not options.get("log_y") and options.get("y_from_zero", True):
            assert axes.get_ylim()[0] <= 0
        if options.get("y_from_zero") is False:
            assert "not from 0" in axes.get_ylabel()
    svg = line_plot_svg(**options)
    visible = re.sub(r"<!--.*?-->", "", svg, flags=re.S)  # matplotlib keeps the source in comments
    assert "mathdefault" not in visible and "$" not in visible


def test_log_ticks_are_plain_text():
    assert [log_tick(v) for v in (0.01, 1, 100, 32768, 1e6, 1e-5)] == [
        "0.01", "1", "100", "32,768", "10⁶", "10⁻⁵",
    ]  # fmt: skip
    assert log_tick(2.0**20, base=2) == "2²⁰"


def test_hostile_labels_are_drawn_as_typed_and_cut():
    svg = line_plot_svg(
        [Line("$x$ <b>", [1, 2], [1, 2]), Line("nul\x00" + "y" * 500, [1, 2], [2, 3])],
        title="$\\mathdefault{10}$", x_label="x", y_label="y",
    )  # fmt: skip
    assert "$x$ &lt;b&gt;" in svg and "\x00" not in svg and "y" * 100 not in svg


def test_the_old_style_name_still_works():
    assert _STYLE is STYLE


def test_the_overlap_check_finds_crowded_labels():
    import matplotlib.pyplot as plt

    with matplotlib.rc_context(STYLE):
        figure, axes = plt.subplots(figsize=(3, 2))
        axes.set_xticks(range(20), [f"label {i}" for i in range(20)])
        assert overlapping_labels(figure)
        plt.close(figure)
