"""SVG plots made at build time with matplotlib (no JavaScript charting, no CDN).

Text is kept as SVG text and math parsing is off, so a `$` in a method name is printed as typed;
matplotlib escapes text for XML. A fixed hash salt keeps the output identical across builds.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

_STYLE = {
    "svg.hashsalt": "budgetbench",
    "svg.fonttype": "none",
    "text.parse_math": False,
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
}


@dataclass(frozen=True)
class Line:
    label: str
    x: Sequence[float | datetime]
    y: Sequence[float]


def line_plot_svg(
    lines: Sequence[Line],
    *,
    title: str,
    x_label: str,
    y_label: str,
    vertical_markers: Sequence[tuple[float | datetime, str]] = (),
) -> str:
    """A line plot as SVG text; `vertical_markers` are (x, label) such as software changes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with matplotlib.rc_context(_STYLE):
        figure, axes = plt.subplots(figsize=(7.0, 3.0), layout="constrained")
        for line in lines:
            axes.plot(line.x, line.y, marker="o", markersize=3, linewidth=1.2, label=line.label)
        for x, label in vertical_markers:
            axes.axvline(x, color="#c0392b", linestyle="--", linewidth=0.8)
            axes.annotate(label, (x, 1.0), xycoords=("data", "axes fraction"), fontsize=7,
                          color="#c0392b", rotation=90, va="top", ha="right")  # fmt: skip
        axes.set_title(title, loc="left")
        axes.set_xlabel(x_label)
        axes.set_ylabel(y_label)
        if len(lines) > 1:
            axes.legend(fontsize=7, loc="best")
        if lines and isinstance(lines[0].x[0], datetime):
            figure.autofmt_xdate()
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None})
        plt.close(figure)
    return buffer.getvalue()
