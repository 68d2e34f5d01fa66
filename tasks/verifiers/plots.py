"""The task's two plots as SVG files: accuracy vs. k (log k) and utility vs. k per cost."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tasks.common.plots import LINE_STYLES, STYLE, plain_tick_labels


def save_line_plot(
    path: Path,
    lines: Sequence[tuple[str, Sequence[float], Sequence[float]]],
    *,
    title: str,
    y_label: str,
    log_x: bool,
    horizontal: Sequence[tuple[float, str]] = (),
    bands: Sequence[tuple[str, Sequence[float], Sequence[float], Sequence[float]]] = (),
) -> Path:
    """Write an SVG of (label, x, y) lines, shaded (label, x, low, high) intervals and labelled
    horizontal reference lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with matplotlib.rc_context(STYLE):
        figure, axes = plt.subplots(figsize=(7.0, 3.6), layout="constrained")
        for index, (label, x, y) in enumerate(lines):  # a line style each, not only a colour
            style = LINE_STYLES[index % len(LINE_STYLES)]
            axes.plot(x, y, style, marker="o", markersize=2.5, linewidth=1.2, label=label)
        for label, x, low, high in bands:
            axes.fill_between(x, low, high, alpha=0.2, linewidth=0, label=label)
        for y, label in horizontal:
            axes.axhline(y, color="#7f8c8d", linestyle="--", linewidth=0.8, label=label)
        if log_x:
            axes.set_xscale("log")
        plain_tick_labels(axes)  # log ticks as text: SVG text would show raw mathtext
        axes.set_title(title, loc="left", fontsize=8)
        axes.set_xlabel("k (samples per problem)")
        axes.set_ylabel(y_label)
        axes.legend(fontsize=7, loc="best")
        figure.savefig(path, format="svg", metadata={"Date": None})
        plt.close(figure)
    return path
