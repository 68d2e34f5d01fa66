"""The site's SVG plots, made at build time with matplotlib (no JavaScript charting, no CDN).

They are drawn in the style of the tasks' own figures (`STYLE`, `LINE_STYLES`, plain-text log
ticks), whose one home is `tasks/common/plots.py`; the harness reaches it through `tasks.base`,
the only task module it imports. Text is kept as SVG text with math parsing off, so a `$` in a
method name is printed as typed; matplotlib escapes text for XML.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tasks.base import LINE_STYLES, STYLE, plain_tick_labels

_STYLE = STYLE  # the name task plot modules imported first (tests/test_plots.py keeps it)

MARKERS = ("o", "s", "^", "D", "v", "P")
MAX_TEXT = 90
"""Longest title or label drawn; longer strings from the data are cut with an ellipsis."""


@dataclass(frozen=True)
class Line:
    label: str
    x: Sequence[float | datetime]
    y: Sequence[float]
    low: Sequence[float] | None = None
    """With `high`: an interval per point (e.g. min and max over repetitions), drawn as a band."""
    high: Sequence[float] | None = None


def short(text: str) -> str:
    """A title or label from the data, without control characters and at most `MAX_TEXT`."""
    text = "".join(c if c.isprintable() else "\ufffd" for c in text)
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def line_plot_figure(
    lines: Sequence[Line],
    *,
    title: str,
    x_label: str,
    y_label: str,
    vertical_markers: Sequence[tuple[float | datetime, str]] = (),
    log_x: bool = False,
    log_y: bool = False,
    y_from_zero: bool = True,
):
    """A matplotlib figure (call inside `rc_context(STYLE)`): one line per `Line`, each with
    its own line style and marker and a legend entry, bands where a line has intervals, and
    `vertical_markers` (x, label) such as software changes. A linear y axis includes 0 unless
    `y_from_zero` is False, and then its label says so."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7.0, 3.0), layout="constrained")
    for index, line in enumerate(lines):
        (drawn,) = axes.plot(
            line.x, line.y, linestyle=LINE_STYLES[index % len(LINE_STYLES)],
            marker=MARKERS[index % len(MARKERS)], markersize=3, linewidth=1.2,
            label=short(line.label),
        )  # fmt: skip
        if line.low is not None and line.high is not None:
            axes.fill_between(line.x, line.low, line.high, color=drawn.get_color(), alpha=0.15,
                              linewidth=0)  # fmt: skip
    for x, label in vertical_markers:
        axes.axvline(x, color="#c0392b", linestyle="--", linewidth=0.8)
        axes.annotate(short(label), (x, 1.0), xycoords=("data", "axes fraction"), fontsize=7,
                      color="#c0392b", rotation=90, va="top", ha="right")  # fmt: skip
    if log_x:
        axes.set_xscale("log")
    if log_y:
        axes.set_yscale("log")
    elif y_from_zero:
        axes.set_ylim(*_with_zero(axes.get_ylim()))
    else:
        y_label = f"{y_label} (axis not from 0)"
    plain_tick_labels(axes)
    axes.set_title(short(title), loc="left")
    axes.set_xlabel(short(x_label))
    axes.set_ylabel(short(y_label))
    if len(lines) > 1 or (lines and vertical_markers):
        axes.legend(fontsize=7, loc="best")
    if lines and lines[0].x and isinstance(lines[0].x[0], datetime):
        figure.autofmt_xdate()
    return figure


def _with_zero(limits: tuple[float, float]) -> tuple[float, float]:
    low, high = limits
    return (min(low, 0.0), max(high, 0.0)) if high > 0 or low < 0 else (low, high)


def line_plot_svg(lines: Sequence[Line], **options: Any) -> str:
    """`line_plot_figure` as SVG text."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with matplotlib.rc_context(STYLE):
        figure = line_plot_figure(lines, **options)
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None})
        plt.close(figure)
    return buffer.getvalue()


def overlapping_labels(figure) -> list[str]:
    """Pairs of tick labels on one axis whose drawn boxes overlap (a plot check for tests)."""
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    problems = []
    for axes in figure.axes:
        for axis in (axes.xaxis, axes.yaxis):
            labels = [t for t in axis.get_ticklabels() if t.get_visible() and t.get_text()]
            boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in labels]
            for index, (text, box) in enumerate(boxes):
                for other_text, other in boxes[index + 1 :]:
                    if box.overlaps(other):
                        problems.append(f"{text!r} overlaps {other_text!r}")
    return problems
