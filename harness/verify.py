"""Verification of a submission: every check a reviewer would make, each failure a reason.

`verify_submission` never stops at the first problem: it lists every reason the submission is
rejected (checksums, versions, the method hash against the enclosed source, the seed count, each
run's rules and internal consistency), plus warnings that do not reject (non-standard settings,
a re-run on different hardware). With `rerun=N` it re-runs N of the submitted seeds from the
enclosed source, written to a temporary directory, into a temporary SQLite store, and compares
each headline metric's seed aggregate (`harness.scoring`; every metric when a task names no
headline metrics) with the submitted one within the task spec's relative tolerance
(`[tolerance]`, else `harness.spec.DEFAULT_TOLERANCE`). A gap on the same hardware key rejects;
on different hardware it is a warning that names the hardware fields that differ, since the
maintainer's machine cannot judge another machine's speed.
"""

from __future__ import annotations

import json
import math
import statistics
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness import __version__
from harness.bundles import content_hash, iso_time, write_bundle
from harness.errors import InputError
from harness.methods import method_hash
from harness.scoring import aggregate_seeds
from harness.spec import load_spec, resolve_config, suite_versions
from harness.submissions import Submission, submission_hash, write_sources

# Numbers that must agree exactly up to float rounding and JSON round trips.
_CLOSE = 1e-9
# Timed seconds measured twice (the task's metric and the clock's total) may differ by this.
_TIMED_SLACK_S = 1e-3


@dataclass(frozen=True)
class RerunComparison:
    """One metric: the submitted and re-run seed aggregates and whether they agree."""

    metric: str
    unit: str
    submitted: float
    rerun: float
    relative_difference: float
    tolerance: float

    @property
    def within(self) -> bool:
        return self.relative_difference <= self.tolerance


@dataclass
class Verification:
    """The verdict on one submission, as written to its report file."""

    submission: str
    submission_sha256: str
    task: str
    profile: str
    method_name: str
    method_hash: str
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    rerun_seeds: list[int] = field(default_factory=list)
    rerun_hardware: str = ""
    hardware_difference: list[str] = field(default_factory=list)
    comparisons: list[RerunComparison] = field(default_factory=list)
    verified_at: str = ""
    budgetbench_version: str = __version__

    @property
    def accepted(self) -> bool:
        return not self.reasons

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["accepted"] = self.accepted
        data["comparisons"] = [{**asdict(c), "within": c.within} for c in self.comparisons]
        return data


def write_report(verification: Verification, path: Path) -> None:
    write_bundle(verification.as_dict(), path)


def read_report(path: Path) -> dict[str, Any] | None:
    """A report file's content, or None when it is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def verify_submission(
    submission: Submission,
    rerun: int = 0,
    device: str = "auto",
    data_dir: Path | None = None,
    tracker=None,
) -> Verification:
    """Judge `submission` (already read by `read_submission`); see the module docstring."""
    data = submission.data
    verification = Verification(
        submission=str(submission.path),
        submission_sha256=data["sha256"],
        task=submission.task,
        profile=submission.profile,
        method_name=submission.method_name,
        method_hash=submission.method_hash,
        verified_at=iso_time(datetime.now(timezone.utc)),
    )
    checks = _Checks(verification)
    _check_checksums(checks, submission)
    context = _check_suite(checks, submission)
    _check_method(checks, submission)
    _check_seeds(checks, submission, context)
    _check_division(checks, submission, context)
    if context is not None:
        for run in submission.runs:
            _check_run(checks, submission, context, run)
    if rerun > 0:
        if checks.failed_so_far:
            verification.warnings.append("re-run skipped: the submission is already rejected")
        else:
            _rerun(checks, submission, context, rerun, device, data_dir, tracker)
    return verification


class _Checks:
    """Collects reasons and the names of checks that passed."""

    def __init__(self, verification: Verification) -> None:
        self.verification = verification

    def require(self, condition: bool, passed: str, reason: str) -> bool:
        if condition:
            self.verification.checks.append(passed)
        else:
            self.verification.reasons.append(reason)
        return condition

    def reject(self, reason: str) -> None:
        self.verification.reasons.append(reason)

    def warn(self, warning: str) -> None:
        self.verification.warnings.append(warning)

    @property
    def failed_so_far(self) -> bool:
        return bool(self.verification.reasons)


@dataclass(frozen=True)
class _Context:
    """What the installed suite says about the submission's task and profile."""

    task_cls: type
    spec: Any
    resolved: Any
    standard_hash: str


def _check_checksums(checks: _Checks, submission: Submission) -> None:
    checks.require(
        submission_hash(submission.data) == submission.stated_sha256,
        "submission checksum matches its content",
        "submission checksum mismatch: the file was modified after `budgetbench submit` wrote it",
    )
    bundle = submission.bundle
    checks.require(
        content_hash(bundle) == bundle["sha256"],
        "bundle checksum matches its runs",
        "bundle checksum mismatch: a run or machine record (a number, a seed, a setting) was"
        " modified after it was recorded",
    )


def _check_suite(checks: _Checks, submission: Submission) -> _Context | None:
    from harness.registry import load_task

    data = submission.data
    installed = suite_versions()
    if not checks.require(
        data["suite_version"] in installed,
        f"suite {data['suite_version']} is installed",
        f"suite version {data['suite_version']!r} is unknown here"
        f" (installed: {', '.join(installed)})",
    ):
        return None
    try:
        task_cls = load_task(submission.task)
        spec = load_spec(submission.task, data["suite_version"])
        resolved = resolve_config(task_cls, spec, submission.profile, submission.settings_overrides)
        standard = resolve_config(task_cls, spec, submission.profile)
    except InputError as exc:
        checks.reject(f"the installed suite cannot run this submission: {exc}")
        return None
    checks.require(
        resolved.task_spec_hash == data["task_spec_hash"],
        "task-spec hash matches the installed suite",
        f"task-spec hash {data['task_spec_hash'][:16]} differs from the installed suite's"
        f" {resolved.task_spec_hash[:16]} for {submission.task}/{submission.profile} with the"
        " stated overrides: the spec or the settings differ",
    )
    return _Context(task_cls, spec, resolved, standard.task_spec_hash)


def _check_method(checks: _Checks, submission: Submission) -> None:
    method = submission.data["method"]
    with tempfile.TemporaryDirectory(prefix="budgetbench-verify-") as scratch:
        paths = write_sources(submission, Path(scratch))
        recomputed = method_hash(tuple(paths), method["hyperparameters"])
    checks.require(
        recomputed == method["method_hash"],
        "method hash matches the enclosed source and hyperparameters",
        f"method hash mismatch: the enclosed source and hyperparameters hash to {recomputed[:16]},"
        f" the submission states {method['method_hash'][:16]} (the source or a hyperparameter"
        " was changed)",
    )
    for run in submission.runs:
        where = f"run {run['id'][:8]} (seed {run['seed']})"
        checks.require(
            (run["method_hash"], run["method_name"]) == (method["method_hash"], method["name"]),
            f"{where} ran the stated method",
            f"{where}: ran method {run['method_name']} {run['method_hash'][:16]}, not the"
            f" submitted {method['name']} {method['method_hash'][:16]}",
        )
        checks.require(
            run["hyperparameters"] == method["hyperparameters"],
            f"{where} ran the stated hyperparameters",
            f"{where}: hyperparameters differ from the enclosed ones",
        )


def _check_seeds(checks: _Checks, submission: Submission, context: _Context | None) -> None:
    run_seeds = [run["seed"] for run in submission.runs]
    declared = submission.data["seeds"]
    checks.require(
        sorted(run_seeds) == sorted(declared),
        "declared seeds match the runs",
        f"declared seeds {sorted(declared)} differ from the runs' seeds {sorted(run_seeds)}",
    )
    checks.require(
        len(set(run_seeds)) == len(run_seeds),
        "each seed ran once",
        f"a seed appears more than once among the runs {sorted(run_seeds)}",
    )
    if context is None:
        return
    required = context.spec.seeds_required(submission.profile)
    checks.require(
        len(set(run_seeds)) >= required,
        f"{len(set(run_seeds))} seeds (at least {required} required)",
        f"{len(set(run_seeds))} seed(s) submitted; task {submission.task!r} profile"
        f" {submission.profile!r} requires {required}",
    )


def _check_division(checks: _Checks, submission: Submission, context: _Context | None) -> None:
    data = submission.data
    settings = submission.settings_overrides
    if data["division"] == "closed":
        checks.require(
            not settings,
            "closed division: the profile's settings unchanged",
            f"closed division, but settings were changed ({', '.join(sorted(settings))}):"
            " only the open division may change the workload",
        )
    else:
        checks.require(
            bool(data["description"].strip()),
            "open division with a description",
            "open division without a description of what was changed",
        )
    if context is not None and data["task_spec_hash"] != context.standard_hash:
        checks.warn(
            "modified settings: ranked on its own leaderboard, not with the standard profile"
        )


def _check_run(checks: _Checks, submission: Submission, context: _Context, run: dict) -> None:
    where = f"run {run['id'][:8]} (seed {run['seed']})"
    data = submission.data
    identity = (run["task"], run["profile"], run["suite_version"], run["task_spec_hash"])
    stated = (submission.task, submission.profile, data["suite_version"], data["task_spec_hash"])
    checks.require(
        identity == stated,
        f"{where} belongs to the stated task, profile and suite",
        f"{where}: task/profile/suite/spec {identity} differ from the submission's {stated}",
    )
    checks.require(
        run["settings"] == context.resolved.settings,
        f"{where} ran the resolved settings",
        f"{where}: its settings differ from the profile's with the stated overrides",
    )
    checks.require(
        run["machine_id"] == data["machine_id"],
        f"{where} ran on the stated machine",
        f"{where}: ran on machine {run['machine_id'][:12]},"
        f" not the stated {data['machine_id'][:12]}",
    )
    if not checks.require(
        run["status"] == "succeeded",
        f"{where} succeeded",
        f"{where}: {run['status']}: {(run['error'] or '').splitlines()[0] if run['error'] else ''}",
    ):
        return
    scalars = {m["name"]: m["value"] for m in run["measurements"]}
    gate = context.task_cls().quality_gate(scalars, context.resolved.config)
    checks.require(
        run["gate_passed"] is True and gate.passed,
        f"{where} passed the quality gate",
        f"{where}: missed the quality gate: {gate.reason or run['gate_reason'] or 'not passed'}",
    )
    checks.require(
        run["gate_passed"] == gate.passed,
        f"{where}: stored gate verdict matches its numbers",
        f"{where}: the stored gate verdict ({run['gate_passed']}) disagrees with its numbers",
    )
    _check_budget(checks, where, run, scalars)
    _check_metrics(checks, where, context.task_cls, run)
    _check_consistency(checks, where, context.task_cls, run, scalars)


def _check_budget(checks: _Checks, where: str, run: dict, scalars: dict[str, float]) -> None:
    timed, wall = run["timed_s"], run["wall_s"]
    if timed is None or wall is None:
        checks.reject(f"{where}: timed or wall seconds missing")
        return
    checks.require(
        timed <= wall + _TIMED_SLACK_S,
        f"{where}: timed seconds within wall time",
        f"{where}: {timed:.3f} timed seconds exceed its {wall:.3f} wall seconds",
    )
    budget = run["settings"].get("budget_s")
    if budget is None:
        return
    # The loop checks the clock before each step, so a run may overshoot by at most one step.
    allowance = scalars.get("longest_step_s", 0.0)
    checks.require(
        timed <= budget + allowance + _TIMED_SLACK_S,
        f"{where}: within its {budget:g} s budget",
        f"{where}: exceeded its budget: {timed:.3f} timed seconds > {budget:g} s budget"
        f" + {allowance:.3f} s (one step)",
    )


def _check_metrics(checks: _Checks, where: str, task_cls: type, run: dict) -> None:
    declared = {m.name: m for m in task_cls.metrics}
    for measurement in run["measurements"]:
        metric = declared.get(measurement["name"])
        if metric is None or metric.is_curve:
            checks.reject(f"{where}: {measurement['name']!r} is not a scalar metric of the task")
        elif (measurement["unit"], measurement["higher_is_better"]) != (
            metric.unit,
            metric.higher_is_better,
        ):
            checks.reject(f"{where}: {measurement['name']} has a unit or direction the task lacks")
    for point in run["curve_points"]:
        metric = declared.get(point["metric"])
        if metric is None or not metric.is_curve:
            checks.reject(f"{where}: {point['metric']!r} is not a curve of the task")
            return


def _check_consistency(
    checks: _Checks, where: str, task_cls: type, run: dict, scalars: dict[str, float]
) -> None:
    """The task's declared relations between numbers (see `tasks.base.Consistency`)."""
    rules = task_cls.consistency
    curves: dict[str, list[dict]] = {}
    for point in run["curve_points"]:
        curves.setdefault(point["metric"], []).append(point)
    timed = run["timed_s"] or 0.0
    for metric, points in curves.items():
        xs = [p["x"] for p in points]
        checks.require(
            xs == sorted(xs),
            f"{where}: curve {metric} in order",
            f"{where}: curve {metric} is out of order",
        )
        if points[0]["x_unit"] == "s":
            checks.require(
                max(xs) <= timed + _TIMED_SLACK_S,
                f"{where}: curve {metric} within the timed seconds",
                f"{where}: curve {metric} has a point at {max(xs):.3f} s, after the run's"
                f" {timed:.3f} timed seconds",
            )
    for scalar, curve in rules.final_is_last_point.items():
        if scalar in scalars and curves.get(curve):
            last = curves[curve][-1]["value"]
            checks.require(
                _close(scalars[scalar], last),
                f"{where}: {scalar} equals the last point of {curve}",
                f"{where}: inconsistent numbers: {scalar} = {scalars[scalar]:.6g} but the last"
                f" point of its curve {curve} is {last:.6g}",
            )
    if rules.values_are_sample_medians:
        for measurement in run["measurements"]:
            samples = measurement["samples"]
            if samples:
                median = statistics.median(samples)
                checks.require(
                    _close(measurement["value"], median),
                    f"{where}: {measurement['name']} is the median of its samples",
                    f"{where}: inconsistent numbers: {measurement['name']} ="
                    f" {measurement['value']:.6g} but the median of its recorded samples is"
                    f" {median:.6g}",
                )
    metric = rules.timed_seconds_metric
    if metric and metric in scalars:
        checks.require(
            abs(scalars[metric] - timed) <= _TIMED_SLACK_S,
            f"{where}: evaluation untimed ({metric} equals the clock's timed seconds)",
            f"{where}: {metric} = {scalars[metric]:.3f} s but the clock timed {timed:.3f} s:"
            " work after training (evaluation) was timed, or a number was edited",
        )


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=_CLOSE, abs_tol=_CLOSE)


def _rerun(
    checks: _Checks,
    submission: Submission,
    context: _Context | None,
    count: int,
    device: str,
    data_dir: Path | None,
    tracker,
) -> None:
    from harness.machine import collect_fingerprint
    from harness.runner import execute, prepare, save_machine
    from harness.store import open_store

    assert context is not None  # a submission without one was rejected before the re-run
    verification = checks.verification
    files = submission.files
    if len(files) != 1:
        checks.warn("re-run skipped: only single-file methods can be re-run from a submission")
        return
    seeds = sorted(submission.data["seeds"])[:count]
    if count > len(seeds):
        checks.warn(f"asked to re-run {count} seeds; the submission has {len(seeds)}")
    verification.rerun_seeds = seeds
    fingerprint = collect_fingerprint()
    verification.rerun_hardware = fingerprint.hardware_label
    machine = submission.machine or {}
    same_hardware = machine.get("hardware_key") == fingerprint.hardware_key
    if not same_hardware:
        verification.hardware_difference = _hardware_difference(
            machine.get("fingerprint", {}).get("hardware", {}), fingerprint.hardware
        )
    with tempfile.TemporaryDirectory(prefix="budgetbench-rerun-") as scratch:
        (source,) = write_sources(submission, Path(scratch) / "method")
        try:
            prepared = prepare(
                submission.task,
                str(source),
                submission.profile,
                device,
                submission.data["overrides"],
                submission.data["suite_version"],
                data_dir,
            )
        except InputError as exc:
            checks.reject(f"re-run could not start: {exc}")
            return
        checks.require(
            prepared.method.method_hash == submission.method_hash,
            "re-run loaded the stated method",
            "re-run: the enclosed source loads with a different method hash",
        )
        store = open_store(f"sqlite:///{Path(scratch) / 'rerun.db'}")
        machine_id = save_machine(store, fingerprint)
        outcomes = list(execute(store, prepared, seeds, machine_id, tracker))
        store.dispose()
    for outcome in outcomes:
        where = f"re-run of seed {outcome.seed}"
        if outcome.status != "succeeded":
            error = (outcome.error or "").splitlines()[0] if outcome.error else ""
            checks.reject(f"{where}: {outcome.status}: {error}")
            return
        if outcome.gate_passed is False:
            checks.reject(f"{where}: missed the quality gate: {outcome.gate_reason}")
            return
    _compare(checks, submission, context, outcomes, same_hardware)


def _compare(checks, submission, context, outcomes, same_hardware: bool) -> None:
    verification = checks.verification
    submitted: dict[str, list[float]] = {}
    units: dict[str, str] = {}
    for run in submission.runs:
        for m in run["measurements"]:
            submitted.setdefault(m["name"], []).append(m["value"])
            units[m["name"]] = m["unit"]
    rerun: dict[str, list[float]] = {}
    for outcome in outcomes:
        for name, (value, _unit) in outcome.scalars.items():
            rerun.setdefault(name, []).append(value)
    task_cls = context.task_cls
    # The numbers a leaderboard shows; bookkeeping such as the budget spent is not a result.
    compared = set(task_cls.headline_metrics or (m.name for m in task_cls.metrics))
    for name in sorted(set(submitted) & set(rerun) & compared):
        before, after = aggregate_seeds(submitted[name]), aggregate_seeds(rerun[name])
        difference = abs(after - before) / abs(before) if before else abs(after - before)
        verification.comparisons.append(
            RerunComparison(
                name, units[name], before, after, difference, context.spec.tolerance(name)
            )
        )
    outside = [c for c in verification.comparisons if not c.within]
    if not outside:
        checks.require(
            True, f"re-run within tolerance on {len(verification.comparisons)} metrics", ""
        )
        return
    summary = "; ".join(
        f"{c.metric} {c.rerun:.4g} vs submitted {c.submitted:.4g}"
        f" ({c.relative_difference:.0%} > {c.tolerance:.0%})"
        for c in outside
    )
    if same_hardware:
        checks.reject(f"re-run on the same hardware disagrees beyond tolerance: {summary}")
    else:
        differs = ", ".join(verification.hardware_difference) or "hardware key"
        checks.warn(
            f"re-run on different hardware ({differs}) is outside tolerance: {summary};"
            " not judged, since that hardware may explain the gap"
        )


def _hardware_difference(submitted: dict[str, Any], here: dict[str, Any]) -> list[str]:
    """The hardware fingerprint fields that differ: `field: submitted -> here`."""
    return [
        f"{key}: {submitted.get(key)!r} -> {here.get(key)!r}"
        for key in sorted(set(submitted) | set(here))
        if submitted.get(key) != here.get(key)
    ]
