"""The paper's Figure 1a question for stored runs: can resampling a weaker model reach a stronger
model's single-sample accuracy?

    python -m tasks.verifiers.compare RUN_ID... --db DB -o results/verifiers/resampling_vs_k.svg

Draws each run's resampling accuracy against k (strong tests; the closed form) with its 95 %
bootstrap band, and the strongest run's pass@1 (strong tests) as a horizontal line with its
interval's ends as dotted lines. Every number comes from the runs as stored, read through
`budgetbench show RUN --json` (a task does not import the harness).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

from tasks.verifiers.crosscheck import budgetbench_json
from tasks.verifiers.plots import save_line_plot


def _label(run: dict[str, Any]) -> str:
    samples = str(run["settings"].get("samples", ""))
    name = Path(samples).name.removesuffix(".gz").removesuffix(".jsonl") if samples else ""
    return name or f"{run['method_name']} {run['id'][:8]}"


def draw(runs: list[dict[str, Any]], output: Path) -> Path:
    """The comparison plot of `runs`, each as `budgetbench show RUN --json` prints it (with its
    curve points and measurements)."""
    lines, bands = [], []
    best = None
    for run in runs:
        curves: dict[str, list[tuple[float, float]]] = {}
        for point in run["curve_points"]:
            curves.setdefault(point["metric"], []).append((point["x"], point["value"]))
        closed = sorted(curves.get("resampling_accuracy", []))
        if not closed:
            raise ValueError(f"run {run['id']} has no resampling_accuracy curve")
        label = _label(run)
        lines.append((label, [x for x, _ in closed], [y for _, y in closed]))
        low, high = (
            sorted(curves.get("resampling_accuracy_lo", [])),
            sorted(curves.get("resampling_accuracy_hi", [])),
        )
        if low and high:
            bands.append((f"{label}, 95 % interval", [x for x, _ in low], [y for _, y in low],
                          [y for _, y in high]))  # fmt: skip
        scalars = {m["name"]: m["value"] for m in run["measurements"]}
        pass_1 = scalars.get("pass_at_1_strong")
        if pass_1 is not None and (best is None or pass_1 > best[1]):
            best = (label, pass_1, scalars.get("pass_at_1_strong_lo"),
                    scalars.get("pass_at_1_strong_hi"))  # fmt: skip
    horizontal = []
    if best is not None:
        label, value, low, high = best
        horizontal.append((value, f"{label}: pass@1 (single sample)"))
        horizontal += [(v, f"{label}: pass@1, 95 % interval") for v in (low, high) if v is not None]
    output.parent.mkdir(parents=True, exist_ok=True)
    return save_line_plot(
        output,
        lines,
        title="Resampling accuracy vs k (HumanEval+ as ground truth, base tests as verifier)",
        y_label="accuracy (strong tests)",
        log_x=True,
        horizontal=horizontal,
        bands=bands,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_ids", nargs="+")
    parser.add_argument("--db", required=True)
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        runs = [budgetbench_json("show", run_id, "--db", args.db) for run_id in args.run_ids]
    except subprocess.CalledProcessError:  # budgetbench printed its one-line reason
        return 2
    print(draw(runs, args.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
