"""The pages of one kind each: suite score, submissions, methods, runs and machines. Each renders
what it is given (boards, scores, runs, changes, submissions) and computes nothing.
"""

from __future__ import annotations

import base64
import functools
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.paths import slug
from harness.publish.history import machine_history
from harness.publish.links import (
    machine_path,
    method_path,
    plot_path,
    run_path,
    submission_path,
)
from harness.publish.plots import Line, line_plot_svg
from harness.publish.writer import PageWriter
from harness.registry import task_report_lines
from harness.score.boards import MetricColumn, bundle_scores, readable_name
from harness.score.rules import OLYMPIC_MIN_SEEDS, TAU_MAX
from harness.score.suite import REFERENCE_FAMILY, SuiteSection
from harness.store.records import MachineRecord, RunRecord
from harness.submit.bundles import (
    machine_to_dict,
    public_bundle,
    public_run_dict,
    read_artifact,
    run_to_dict,
)
from harness.submit.results import PublishedSubmission

if TYPE_CHECKING:
    from harness.score.tasks import TaskInfo


def render_suite_score(writer: PageWriter, sections: list[SuiteSection]) -> None:
    """The suite score page: a section per profile (see `harness.score.suite.suite_sections`)."""
    writer.page(
        "suite.html",
        "suite.html",
        title="Suite score",
        sections=sections,
        tau_max=TAU_MAX,
        olympic_min_seeds=OLYMPIC_MIN_SEEDS,
        reference_family=REFERENCE_FAMILY,
    )


def render_submissions(
    writer: PageWriter,
    submissions: list[PublishedSubmission],
    include_private: bool,
    infos: dict[str, TaskInfo],
) -> None:
    """A page per submission, with a copy of its file (in public form unless `include_private`:
    a scrubbed copy's checksums no longer match; the original under `results/` is the one to
    verify) and its verification report."""
    for submission in submissions:
        info = infos.get(submission.data["task"])
        declared = info.metrics if info else []
        data = submission.data
        if not include_private:
            data = {**data, "bundle": public_bundle(data["bundle"])}
        writer.text(
            submission_path(submission, ".json"), json.dumps(data, indent=1, sort_keys=True) + "\n"
        )
        if submission.report is not None:
            writer.text(
                submission_path(submission, ".verification.json"),
                json.dumps(submission.report, indent=1, sort_keys=True) + "\n",
            )
        writer.page(
            submission_path(submission),
            "submission.html",
            title=f"submission {submission.data['method']['name']}",
            submission=submission,
            scrubbed=not include_private,
            scores=bundle_scores(submission.data["bundle"]["runs"], declared),
            machine=submission.machine,
        )


def render_methods(
    writer: PageWriter,
    runs: list[RunRecord],
    submissions: list[PublishedSubmission],
    include_private: bool,
) -> None:
    by_method: dict[str, list[RunRecord]] = {}
    for run in runs:
        by_method.setdefault(run.method_hash, []).append(run)
    for method_hash, method_runs in by_method.items():
        latest = method_runs[-1]
        writer.page(
            method_path(method_hash),
            "method.html",
            title=f"method {latest.method_name}",
            method=latest,
            sources=(
                run_to_dict(latest) if include_private else public_run_dict(run_to_dict(latest))
            )["provenance"].get("method_sources", []),
            runs=list(reversed(method_runs)),
            submissions=[
                sub for sub in submissions if sub.data["method"]["method_hash"] == method_hash
            ],
        )


def render_runs(
    writer: PageWriter, runs: list[RunRecord], include_private: bool, infos: dict[str, TaskInfo]
) -> None:
    for run in runs:
        declared = (
            {column.name: column for column in infos[run.task].metrics}
            if run.task in (infos)
            else {}
        )
        shown = run_to_dict(run) if include_private else public_run_dict(run_to_dict(run))
        record = {**shown, "machine": machine_to_dict(run.machine)}
        writer.text(run_path(run.id, ".json"), json.dumps(record, indent=1, sort_keys=True) + "\n")
        curves: dict[str, list] = {}
        for point in run.curve_points:
            curves.setdefault(point.metric, []).append(point)
        plots = []
        for metric, points in sorted(curves.items()):
            line = Line(metric, [p.x for p in points], [p.value for p in points])
            svg = line_plot_svg(
                [line], title=metric, x_label=points[0].x_unit, y_label=points[0].unit,
                y_from_zero=False,
            )  # fmt: skip
            path = plot_path("runs", run.id, metric)
            writer.text(path, svg)
            plots.append((path, metric))
        writer.page(
            run_path(run.id),
            "run.html",
            title=f"run {run.id[:8]}",
            run=run,
            shown=shown,
            artifacts=[_publish_artifact(writer, run.id, artifact) for artifact in run.artifacts],
            curves=plots,
            groups=metric_groups(run.measurements, declared),
            report=task_report_lines(run.task, {m.name: m.value for m in run.measurements}),
            budget_s=(run.settings or {}).get("budget_s"),
            error_summary=(shown["error"] or "").split("\n\n", 1)[0],
        )


_INLINE_IMAGES = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp"}
_DOWNLOADS = {
    "application/json": "json",
    "application/jsonl": "jsonl",
    "application/x-ndjson": "jsonl",
    "text/csv": "csv",
    "text/plain": "txt",
}


@dataclass(frozen=True)
class ShownArtifact:
    """An artifact as a run page shows it: an image inline, other files to download."""

    name: str
    media_type: str
    size_bytes: int
    sha256: str
    kind: str
    """image, download or missing (the file is not here or no longer matches its sha256)."""
    src: str = ""


def _publish_artifact(writer: PageWriter, run_id: str, artifact) -> ShownArtifact:
    """Copy a run's artifact into the site under a name made of its hash and slug. SVG is
    shown as a data URI in an <img>, where a hostile file's scripts never run; other types
    are written with an extension from a fixed list, so a browser never runs them either."""
    data = read_artifact(artifact)
    shown = functools.partial(
        ShownArtifact, artifact.name, artifact.media_type, artifact.size_bytes, artifact.sha256
    )
    if data is None:
        return shown("missing")
    if artifact.media_type == "image/svg+xml":
        return shown("image", "data:image/svg+xml;base64," + base64.b64encode(data).decode())
    image = artifact.media_type in _INLINE_IMAGES
    extension = _INLINE_IMAGES.get(artifact.media_type) or _DOWNLOADS.get(artifact.media_type)
    path = (
        f"artifacts/{slug(run_id)}/{artifact.sha256[:16]}-{slug(artifact.name)}"
        f".{extension or 'bin'}"
    )
    writer.bytes(path, data)
    return shown("image" if image else "download", path)


METRIC_GROUPS = {
    "quality": "Quality: how good the result is",
    "speed": "Speed: how fast the work ran",
    "memory": "Memory and size",
    "budget": "Budget bookkeeping: what the run spent (no better or worse)",
}
_SPEED_UNITS = ("/s", "tflop", "gb/s")
_BUDGET_NAMES = {"steps", "parameters", "flops_per_token", "longest_step_s", "quantize_s"}


def metric_group(name: str, unit: str) -> str:
    """quality, speed, memory or budget, from the metric's name and unit."""
    lowered, unit_lowered = name.lower(), unit.lower()
    if lowered.startswith("budget") or lowered in _BUDGET_NAMES:
        return "budget"
    if unit_lowered.endswith(_SPEED_UNITS) or "mfu" in lowered or lowered.endswith("_s"):
        return "speed"  # memory bandwidth (GB/s) is a speed
    if "memory" in lowered or unit_lowered in ("mib", "gib", "bytes", "bits"):
        return "memory"
    return "quality"


def metric_groups(measurements, declared: dict[str, MetricColumn]) -> list[tuple[str, list]]:
    """A run's measurements by group, in the task's order, each with its description."""
    order = {name: index for index, name in enumerate(declared)}
    grouped: dict[str, list] = {group: [] for group in METRIC_GROUPS}
    for measurement in sorted(measurements, key=lambda m: (order.get(m.name, 1e9), m.name)):
        column = declared.get(measurement.name)
        grouped[metric_group(measurement.name, measurement.unit)].append(
            (measurement, column.description if column else "", readable_name(measurement.name))
        )
    return [(METRIC_GROUPS[group], items) for group, items in grouped.items() if items]


def render_machines(
    writer: PageWriter,
    runs: list[RunRecord],
    machines: list[MachineRecord],
    latest: dict[str, MachineRecord],
    changes,
) -> None:
    for hardware_key, machine in latest.items():
        machine_runs = [r for r in runs if r.hardware_key == hardware_key]
        machine_changes = [c for c in changes if c.hardware_key == hardware_key]
        software = [m for m in machines if m.hardware_key == hardware_key]
        history = machine_history(machine_runs, machine_changes)
        plots = []
        for name, svg in history.plots.items():
            path = plot_path("machines", hardware_key, name)
            writer.text(path, svg)
            plots.append((path, name))
        writer.page(
            machine_path(hardware_key),
            "machine.html",
            title=machine.hardware_label,
            machine=machine,
            software_versions=software,
            plots=plots,
            constant=history.constant,
            runs=list(reversed(machine_runs))[:200],
            changes=machine_changes,
        )
