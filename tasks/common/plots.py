"""The look of every budgetbench plot, for the tasks' figures and the site's alike: matplotlib
rcParams (`STYLE`), line styles told apart without colour (`LINE_STYLES`), and plain-text labels
for log axes (`plain_tick_labels`).

Text is kept as SVG text and math parsing is off, so a `$` in a method name is printed as typed;
matplotlib escapes text for XML. A fixed hash salt keeps the output identical across builds. With
math parsing off, matplotlib's own log-axis labels (`$\\mathdefault{10^{2}}$`) would be printed
raw: `plain_tick_labels` gives log axes plain-text labels instead (`100`, `10⁶`). Task plot
modules draw inside `matplotlib.rc_context(STYLE)` and call `plain_tick_labels` on their axes
after setting the scales. The harness (the site's plots) reaches these names through
`tasks.base`, the one task module it may import. Importing this module does not import matplotlib.
"""

from __future__ import annotations

import functools
import math
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

LINE_STYLES = ("-", "--", ":", "-.")
_SUPERSCRIPTS = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


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
