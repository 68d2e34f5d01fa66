"""The run's figures, written as SVG files with matplotlib (Agg): the per-layer sensitivity
heatmap (block x module type), the sampling-sensitivity curves (mean NLL under the reference
against temperature, reference and method, one panel per max-new-tokens length) and the sampling
departure heat map (temperature x top-k and length) with the noise floor marked."""

from __future__ import annotations

import math
from pathlib import Path

from tasks.common.plots import STYLE
from tasks.quant.sampling import Cell, FloorAnalysis
from tasks.quant.sensitivity import LayerSensitivity


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return matplotlib, plt


def sensitivity_heatmap(layers: list[LayerSensitivity], method: str, path: Path) -> Path:
    matplotlib, plt = _pyplot()
    blocks = sorted({layer.block for layer in layers})
    kinds = list(dict.fromkeys(layer.kind for layer in sorted(layers, key=lambda x: x.name)))
    grid = [[math.nan] * len(kinds) for _ in blocks]
    for layer in layers:
        grid[blocks.index(layer.block)][kinds.index(layer.kind)] = layer.kl
    with matplotlib.rc_context({**STYLE, "axes.grid": False}):
        height = 1.2 + 0.3 * len(blocks)
        figure, axes = plt.subplots(figsize=(1.5 + 0.8 * len(kinds), height), layout="constrained")
        image = axes.imshow(grid, aspect="auto", cmap="magma_r")
        axes.set_xticks(range(len(kinds)), kinds, rotation=45, ha="right")
        axes.set_yticks(range(len(blocks)), [str(b) for b in blocks])
        axes.set_xlabel("module")
        axes.set_ylabel("block")
        axes.set_title(f"{method}: KL(ref || q) with one layer quantized", loc="left")
        figure.colorbar(image, ax=axes, label="mean KL (nats)")
        figure.savefig(path, format="svg", metadata={"Date": None})
        plt.close(figure)
    return path


def sampling_curves(reference: list[Cell], quantized: list[Cell], method: str, path: Path) -> Path:
    matplotlib, plt = _pyplot()
    lengths = sorted({cell.max_new_tokens for cell in reference})
    with matplotlib.rc_context(STYLE):
        figure, axes = plt.subplots(
            1, len(lengths), figsize=(3.2 * len(lengths), 2.8), layout="constrained", squeeze=False
        )
        for axis, length in zip(axes[0], lengths, strict=True):
            for cells, label, style in ((reference, "reference", "--"), (quantized, method, "-")):
                for top_k in sorted({c.top_k for c in cells if c.temperature > 0}):
                    chosen = sorted(
                        (c for c in cells if c.max_new_tokens == length
                         and (c.top_k == top_k or c.temperature == 0)),
                        key=lambda c: c.temperature,
                    )  # fmt: skip
                    axis.plot(
                        [c.temperature for c in chosen],
                        [c.nll for c in chosen],
                        style,
                        marker="o",
                        markersize=3,
                        label=f"{label}, top-k {top_k or 'off'}",
                    )
            axis.set_title(f"{length} new tokens", loc="left")
            axis.set_xlabel("temperature")
            axis.set_ylabel("NLL under the reference (nats/token)")
        axes[0][0].legend(fontsize=6)
        figure.savefig(path, format="svg", metadata={"Date": None})
        plt.close(figure)
    return path


def departure_heatmap(analysis: FloorAnalysis, method: str, path: Path) -> Path:
    """|NLL_q - NLL_ref| per cell; the colour scale is centred on the noise floor F (white), so
    red cells depart more than the reference does from itself; a star marks a cell whose 95%
    interval of |departure| - F lies above zero."""
    matplotlib, plt = _pyplot()
    from matplotlib.colors import TwoSlopeNorm

    temperatures = sorted({c.temperature for c in analysis.cells})
    columns = sorted({(c.top_k, c.max_new_tokens) for c in analysis.cells})
    grid = [[math.nan] * len(columns) for _ in temperatures]
    marks = []
    for cell in analysis.cells:
        row = temperatures.index(cell.temperature)
        column = columns.index((cell.top_k, cell.max_new_tokens))
        grid[row][column] = abs(cell.departure)
        marks.append((row, column, f"{cell.departure:+.3f}{'*' if cell.significant else ''}"))
    top = max(max(abs(c.departure) for c in analysis.cells), 2 * analysis.floor, 1e-9)
    norm = TwoSlopeNorm(vmin=0.0, vcenter=max(analysis.floor, top * 1e-6), vmax=top)
    with matplotlib.rc_context({**STYLE, "axes.grid": False}):
        figure, axes = plt.subplots(
            figsize=(2.5 + 1.1 * len(columns), 1.6 + 0.45 * len(temperatures)),
            layout="constrained",
        )
        image = axes.imshow(grid, aspect="auto", cmap="RdBu_r", norm=norm)
        for row, column, text in marks:
            axes.text(column, row, text, ha="center", va="center", fontsize=7)
        labels = [f"k {k or 'off'}, {n} tok" for k, n in columns]
        axes.set_xticks(range(len(columns)), labels, rotation=45, ha="right")
        axes.set_yticks(range(len(temperatures)), [f"T {t:g}" for t in temperatures])
        axes.set_title(
            f"{method}: NLL_q - NLL_ref per cell; floor F = {analysis.floor:.3f} (white);"
            f" * beyond F (95%)",
            loc="left",
            fontsize=8,
        )
        bar = figure.colorbar(image, ax=axes, label="|departure| (nats/token)")
        bar.ax.axhline(analysis.floor, color="black", linewidth=1.5)
        figure.savefig(path, format="svg", metadata={"Date": None})
        plt.close(figure)
    return path
