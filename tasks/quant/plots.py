"""The run's two figures, written as SVG files with matplotlib (Agg): the per-layer sensitivity
heatmap (block x module type) and the sampling-sensitivity curves (mean NLL under the reference
against temperature, reference and method, one panel per max-new-tokens length)."""

from __future__ import annotations

import math
from pathlib import Path

from harness.plots import _STYLE
from tasks.quant.sampling import Cell
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
    with matplotlib.rc_context({**_STYLE, "axes.grid": False}):
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
    with matplotlib.rc_context(_STYLE):
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
