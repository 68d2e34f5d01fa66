"""SVG plots made at build time with matplotlib (no JavaScript charting, no CDN).

Text is kept as SVG text and math parsing is off, so a `$` in a method name is printed as typed;
matplotlib escapes text for XML. A fixed hash salt keeps the output identical across builds.

Math parsing off means matplotlib's own log-axis labels (`$\\mathdefault{10^{2}}$`) would be
printed raw: `plain_tick_labels` gives log axes plain-text labels instead (`100`, `10⁶`). Task
plot modules use `STYLE` and call `plain_tick_labels` on their axes after setting the scales.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

STYLE: dict[str, Any] = {
    "svg.hashsalt": "budgetbench",
    "svg.fonttype": "none",
    "text.parse_math": False,
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
}
"""The rcParams of every budgetbench plot (use with `matplotlib.rc_context(STYLE)`)."""

_STYLE = STYLE  # the name task plot modules imported first

LINE_STYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D", "v", "P")
MAX_TEXT = 90
"""Longest title or label drawn; longer strings from the data are cut with an ellipsis."""

_SUPERSCRIPTS = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


@dataclass(frozen=True)
class Line:
    label: str
    x: Sequence[float | datetime]
    y: Sequence[float]
    low: Sequence[float] | None = None
    """With `high`: an interval per point (e.g. min and max over repetitions), drawn as a band."""
    high: Sequence[float] | None = None


def plain_tick_labels(axes) -> None:
    """Give every log-scaled axis of `axes` plain-text tick labels (no mathtext) and no labels
    on minor ticks, so they neither show raw `$\\mathdefault{…}$` nor overlap."""
    from matplotlib import ticker

    for axis, limits in ((axes.xaxis, axes.get_xlim()), (axes.yaxis, axes.get_ylim())):
        if axis.get_scale() != "log":
            continue
        base = getattr(axis.get_transform(), "base", 10)
        axis.set_major_formatter(ticker.FuncFormatter(functools.partial(_log_label, base=base)))
        axis.set_minor_formatter(ticker.NullFormatter())
        low, high = sorted(limits)
        if low > 0 and math.log(high / low, base) < 1.5:  # under two decades: label 2 and 5 too
            axis.set_major_locator(ticker.LogLocator(base=base, subs=(1.0, 2.0, 5.0)))


def _log_label(value: float, _position: int, *, base: float) -> str:
    return log_tick(value, base)


def log_tick(value: float, base: float = 10) -> str:
    """A log-axis tick as plain text: `0.01`, `100`, `32,768`, or a power such as `10⁶`."""
    if value <= 0:
        return ""
    if 1e-3 <= value < 1e6:
        return f"{value:,.0f}" if value >= 1 and value == int(value) else f"{value:g}"
    exponent = round(math.log(value, base))
    if math.isclose(base**exponent, value, rel_tol=1e-9):
        return f"{base:g}{str(exponent).translate(_SUPERSCRIPTS)}"
    return f"{value:.0e}"


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
