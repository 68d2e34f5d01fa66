"""Steps-to-target against global batch size (log-log), one curve per method, with the
perfect-scaling line: the figure of McCandlish et al. and Shallue et al.

`plot_steps_to_target` takes any number of curves, so a report or the site can draw several
runs together; a run draws its own method alone.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class SweepCurve:
    """One method's sweep: steps-to-target per global batch size (batch sizes that reached it)."""

    label: str
    steps_to_target: dict[int, float]

    @classmethod
    def from_points(cls, label: str, points: Iterable[tuple[str, float, float]]) -> SweepCurve:
        """A run's curve from its stored curve points (metric, x, value): the site or a report
        draws several runs together with `plot_steps_to_target`."""
        steps = {int(x): value for metric, x, value in points if metric == "steps_to_target"}
        return cls(label, steps)


def plot_steps_to_target(curves: Sequence[SweepCurve], *, title: str) -> str:
    """An SVG (text) of steps-to-target vs batch size, log-log; a dashed line shows perfect
    linear scaling from the smallest batch of the first curve (steps halve as the batch doubles).
    Curves without points are left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    drawn = [c for c in curves if c.steps_to_target]
    style = {"svg.hashsalt": "budgetbench", "svg.fonttype": "none", "text.parse_math": False,
             "font.size": 9, "axes.grid": True, "grid.alpha": 0.3}  # fmt: skip
    with matplotlib.rc_context(style):
        figure, axes = plt.subplots(figsize=(5.5, 4.0), layout="constrained")
        for curve in drawn:
            batches = sorted(curve.steps_to_target)
            steps = [curve.steps_to_target[b] for b in batches]
            axes.plot(batches, steps, marker="o", markersize=4, linewidth=1.2, label=curve.label)
        if drawn:
            reference = drawn[0]
            smallest = min(reference.steps_to_target)
            largest = max(max(c.steps_to_target) for c in drawn)
            product = smallest * reference.steps_to_target[smallest]
            axes.plot(
                [smallest, largest],
                [product / smallest, product / largest],
                linestyle="--",
                color="grey",
                linewidth=1.0,
                label="perfect scaling",
            )
        axes.set_xscale("log", base=2)
        axes.set_yscale("log")
        axes.set_xlabel("global batch size (sequences)")
        axes.set_ylabel("steps to target")
        axes.set_title(title, loc="left")
        axes.legend(fontsize=7, loc="best")
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None})
        plt.close(figure)
    return buffer.getvalue()
