"""The figures of Shallue et al. and McCandlish et al., as SVG text:

- steps-to-target against global batch size (log-log), one line per method with its bootstrap
  interval as a band, and the perfect-scaling line (steps halve as the batch doubles);
- the (steps, examples) Pareto curve: examples to target against steps to target, one point per
  batch size, with McCandlish's fitted trade-off (S/S_min - 1)(E/E_min - 1) = 1 where the fit
  exists (eq. 2.11).

Both take any number of curves, so a report or the site can draw several runs together
(`SweepCurve.from_points` reads a stored run); a run draws its own method alone.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from tasks.common.plots import STYLE
from tasks.large_batch.scaling import bootstrap_interval, fit_critical_batch, geometric_mean


@dataclass(frozen=True)
class SweepCurve:
    """One method's sweep: tuned steps-to-target per global batch size (those that reached it),
    with the low and high ends of its interval where known."""

    label: str
    steps_to_target: dict[int, float]
    low: dict[int, float] = field(default_factory=dict)
    high: dict[int, float] = field(default_factory=dict)

    @classmethod
    def from_points(cls, label: str, points: Iterable[tuple[str, float, float]]) -> SweepCurve:
        """A run's curve from its stored curve points (metric, x, value)."""
        by_metric: dict[str, dict[int, float]] = {}
        for metric, x, value in points:
            by_metric.setdefault(metric, {})[int(x)] = value
        return cls(
            label,
            by_metric.get("steps_to_target", {}),
            by_metric.get("steps_to_target_low", {}),
            by_metric.get("steps_to_target_high", {}),
        )

    @classmethod
    def from_seed_steps(
        cls, label: str, seed_steps: Mapping[int, list[float] | None]
    ) -> SweepCurve:
        """The curve of a run in progress: geometric means over seeds, bootstrap intervals."""
        means, low, high = {}, {}, {}
        for batch, steps in seed_steps.items():
            if not steps or min(steps) <= 0:
                continue
            means[batch] = geometric_mean(steps)
            interval = bootstrap_interval({batch: steps}, lambda s, b=batch: geometric_mean(s[b]),
                                          seed=batch)  # fmt: skip
            if interval is not None:
                low[batch], high[batch] = interval
        return cls(label, means, low, high)


def _log_axes(axes, x_label: str, y_label: str, x_base: int) -> None:
    """Log axes with plain-number tick labels (matplotlib's default log labels are mathtext,
    which prints raw with math parsing off). Scales first: setting one resets its formatters."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axes.set_xscale("log", base=x_base)
    axes.set_yscale("log")
    for axis in (axes.xaxis, axes.yaxis):
        if axis is axes.yaxis or x_base == 10:
            axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axis.set_minor_formatter(NullFormatter())
    axes.set_xlabel(x_label)
    axes.set_ylabel(y_label)


def _render(draw, title: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with matplotlib.rc_context(STYLE):
        figure, axes = plt.subplots(figsize=(5.5, 4.0), layout="constrained")
        draw(axes)
        axes.set_title(title, loc="left")
        axes.legend(fontsize=7, loc="best")
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None})
        plt.close(figure)
    return buffer.getvalue()


def plot_steps_to_target(curves: Sequence[SweepCurve], *, title: str) -> str:
    """Steps-to-target vs batch size, log-log, a band per curve where its interval is known, and
    a dashed perfect-scaling line from the smallest batch of the first curve. Curves without
    points are left out."""
    drawn = [c for c in curves if c.steps_to_target]

    def draw(axes) -> None:
        for curve in drawn:
            batches = sorted(curve.steps_to_target)
            steps = [curve.steps_to_target[b] for b in batches]
            (line,) = axes.plot(batches, steps, marker="o", markersize=4, linewidth=1.2,
                                label=curve.label)  # fmt: skip
            banded = [b for b in batches if b in curve.low and b in curve.high]
            if banded:
                axes.fill_between(banded, [curve.low[b] for b in banded],
                                  [curve.high[b] for b in banded], color=line.get_color(),
                                  alpha=0.2, linewidth=0)  # fmt: skip
        if drawn:
            reference = drawn[0]
            smallest = min(reference.steps_to_target)
            largest = max(max(c.steps_to_target) for c in drawn)
            product = smallest * reference.steps_to_target[smallest]
            axes.plot([smallest, largest], [product / smallest, product / largest],
                      linestyle="--", color="grey", linewidth=1.0,
                      label="perfect scaling")  # fmt: skip
        _log_axes(axes, "global batch size (sequences)", "steps to target", 2)

    return _render(draw, title)


def plot_pareto(curves: Sequence[SweepCurve], *, title: str) -> str:
    """Examples against steps to target (log-log), points labelled by batch size, and each
    curve's fitted trade-off E = E_min (1 + 1 / (S/S_min - 1)) where the B_crit fit exists."""
    drawn = [c for c in curves if c.steps_to_target]

    def draw(axes) -> None:
        for curve in drawn:
            batches = sorted(curve.steps_to_target)
            steps = [curve.steps_to_target[b] for b in batches]
            examples = [s * b for s, b in zip(steps, batches, strict=True)]
            (line,) = axes.plot(steps, examples, marker="o", markersize=4, linewidth=0,
                                label=curve.label)  # fmt: skip
            for batch, s, e in zip(batches, steps, examples, strict=True):
                axes.annotate(f"B={batch}", (s, e), fontsize=6, xytext=(3, 3),
                              textcoords="offset points")  # fmt: skip
            fit = fit_critical_batch(curve.steps_to_target)
            if fit is not None:
                s_min, e_min = fit.min_steps, fit.min_examples
                # From where the fit needs twice the most examples measured, so the curve's
                # asymptote does not squash the points.
                k = max(2 * max(examples) / e_min, 1.5)
                first = s_min * (1 + 1 / (k - 1))
                span = max(2 * max(steps) / first, 1.0)
                grid = [first * span ** (i / 99) for i in range(100)]
                axes.plot(grid, [e_min * (1 + 1 / (s / s_min - 1)) for s in grid], linestyle="--",
                          color=line.get_color(), linewidth=1.0,
                          label=f"{curve.label}: fit, B_crit {fit.critical_batch:.3g}")  # fmt: skip
        _log_axes(axes, "steps to target", "examples to target", 10)

    return _render(draw, title)
