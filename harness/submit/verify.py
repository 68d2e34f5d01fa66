"""Verification of a submission: every check a reviewer would make, each failure a reason.

`verify_submission` never stops at the first problem: it lists every reason the submission is
rejected (checksums, versions, the method hash against the enclosed source, the seed count, each
run's rules and internal consistency, runs replayed as other seeds), plus warnings that do not
reject. The result carries a status (`harness.submit.statuses`): *checked* without a re-run.

With `rerun=N` it re-runs N of the submitted seeds from the enclosed source, written to a temporary
directory and run confined (`harness.run.confine`), into the verifier's own store (the report names
those run ids and the verifier's machine), and compares each headline metric (every metric when a
task names no headline metrics) on a symmetric scale: the ratio re-run / submitted of the geometric
means (`_compare_metric`), with a confidence interval from the spread of the seeds on both sides,
judged against the task spec's relative tolerance t as the band [1/(1+t), 1+t], so 2x too high and
2x too low are judged alike. The interval inside the band agrees; entirely outside it disagrees;
otherwise it is inconclusive and the re-run repeats (up to `max_rounds` rounds) before saying so.
Agreement on the same hardware key is *verified*, on other hardware *reproduced elsewhere*;
disagreement on the same hardware rejects; anything else stays *checked* with a warning, since a
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
from harness.errors import InputError
from harness.run.methods import method_hash
from harness.spec import load_spec, resolve_config, suite_versions
from harness.submit.bundles import content_hash, iso_time, write_bundle
from harness.submit.statuses import (
    AGREES,
    CHECKED,
    DISAGREES,
    INCONCLUSIVE,
    REJECTED,
    REPORT_FORMAT,
    REPORT_FORMAT_VERSION,
    REPRODUCED_ELSEWHERE,
    VERIFIED,
)
from harness.submit.submissions import Submission, submission_hash, write_sources

# Numbers that must agree exactly up to float rounding and JSON round trips.
_CLOSE = 1e-9
# Timed seconds measured twice (the task's metric and the clock's total) may differ by this.
_TIMED_SLACK_S = 1e-3
CONFIDENCE = 0.90
"""Two-sided confidence of a re-run comparison's interval (a 5 % test each way, as in TOST)."""
DEFAULT_MAX_ROUNDS = 3
"""Rounds of re-runs at most while a comparison is inconclusive."""


@dataclass(frozen=True)
class RerunComparison:
    """One metric: the submitted and re-run per-seed values and what they say together.

    On the `log` scale (all values positive) `estimate` is the ratio of geometric means re-run /
    submitted; on the `linear` scale (a value <= 0) it is the difference of the means over the
    larger absolute mean. [`low`, `high`] is its `confidence` interval, `tolerance` the band.
    """

    metric: str
    unit: str
    submitted: list[float]
    rerun: list[float]
    scale: str
    estimate: float
    low: float
    high: float
    confidence: float
    tolerance: float
    verdict: str


@dataclass
class Verification:
    """The verdict on one submission, as written to its report file (see
    `harness.submit.statuses`)."""

    submission: str
    submission_sha256: str
    task: str
    profile: str
    method_name: str
    method_hash: str
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    verifier: dict[str, Any] = field(default_factory=dict)
    rerun: dict[str, Any] | None = None
    comparisons: list[RerunComparison] = field(default_factory=list)
    verified_at: str = ""
    budgetbench_version: str = __version__

    @property
    def accepted(self) -> bool:
        return not self.reasons

    @property
    def status(self) -> str:
        if self.reasons:
            return REJECTED
        verdicts = {c.verdict for c in self.comparisons}
        if self.rerun is None or not self.rerun.get("run_ids") or verdicts != {AGREES}:
            return CHECKED
        return VERIFIED if self.rerun["same_hardware"] else REPRODUCED_ELSEWHERE

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            format=REPORT_FORMAT,
            format_version=REPORT_FORMAT_VERSION,
            status=self.status,
            accepted=self.accepted,
        )
        return data


def write_report(verification: Verification, path: Path, signer=None) -> dict[str, Any]:
    """Write the report (signed when `signer`, a `harness.submit.signatures.Signer`, is given)."""
    data = verification.as_dict()
    if signer is not None:
        data = signer.sign(data)
    write_bundle(data, path)
    return data


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
    store=None,
    max_rounds: int = DEFAULT_MAX_ROUNDS,
) -> Verification:
    """Judge `submission` (already read by `read_submission`); see the module docstring.

    A re-run needs `store`, the verifier's own store, which keeps the re-run's runs."""
    from harness.run.machine import collect_fingerprint

    data = submission.data
    fingerprint = collect_fingerprint()
    verification = Verification(
        submission=str(submission.path),
        submission_sha256=data["sha256"],
        task=submission.task,
        profile=submission.profile,
        method_name=submission.method_name,
        method_hash=submission.method_hash,
        verifier={
            "budgetbench_version": __version__,
            "machine_id": fingerprint.id,
            "hardware_key": fingerprint.hardware_key,
            "software_key": fingerprint.software_key,
            "hardware_label": fingerprint.hardware_label,
            "fingerprint": fingerprint.as_dict(),
        },
        verified_at=iso_time(datetime.now(timezone.utc)),
    )
    checks = _Checks(verification)
    _check_checksums(checks, submission)
    context = _check_suite(checks, submission)
    _check_method(checks, submission)
    _check_seeds(checks, submission, context)
    _check_replays(checks, submission)
    _check_division(checks, submission, context)
    if context is not None:
        for run in submission.runs:
            _check_run(checks, submission, context, run)
    if rerun > 0:
        if store is None:
            raise ValueError("a re-run needs the verifier's store")
        if checks.failed_so_far:
            verification.warnings.append("re-run skipped: the submission is already rejected")
        else:
            _rerun(checks, submission, context, rerun, device, data_dir, tracker, store,
                   fingerprint, max_rounds)  # fmt: skip
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


def _check_replays(checks: _Checks, submission: Submission) -> None:
    """Two seeds' runs that share their clock readings are one run recorded twice.

    Wall seconds (and the raw repetitions behind a median) come from `perf_counter` and never
    repeat to the last bit between honest runs, whatever the seed."""
    seen: dict[Any, int] = {}
    for run in submission.runs:
        samples = tuple(
            (m["name"], tuple(m["samples"])) for m in run["measurements"] if m["samples"]
        )
        for key in (("wall", run["wall_s"]), ("samples", samples)):
            if key[1] in (None, ()):
                continue
            first = seen.setdefault(key, run["seed"])
            checks.require(
                first == run["seed"],
                f"seed {run['seed']}'s run is its own",
                f"seed {run['seed']}'s run repeats seed {first}'s clock readings exactly"
                f" ({'wall seconds' if key[0] == 'wall' else 'raw repetitions'}): one run"
                " replayed as another seed",
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
    store,
    fingerprint,
    max_rounds: int,
) -> None:
    """Re-run `count` seeds, in rounds until every comparison is decided or `max_rounds` ran."""
    from harness.run.confine import bwrap_path, prepare_confined
    from harness.run.runner import execute, save_machine

    assert context is not None  # a submission without one was rejected before the re-run
    bwrap_path()  # no sandbox here is the verifier's problem (exit 2), not a reason to reject
    files = submission.files
    if len(files) != 1:
        checks.warn("re-run skipped: only single-file methods can be re-run from a submission")
        return
    seeds = sorted(submission.data["seeds"])[:count]
    if count > len(seeds):
        checks.warn(f"asked to re-run {count} seeds; the submission has {len(seeds)}")
    machine = submission.machine or {}
    stated = machine.get("fingerprint", {})
    rerun: dict[str, Any] = {
        "seeds": seeds,
        "rounds": 0,
        "run_ids": [],
        "store": store.display_url,
        "machine_id": fingerprint.id,
        "hardware_key": fingerprint.hardware_key,
        "same_hardware": machine.get("hardware_key") == fingerprint.hardware_key,
        "hardware_difference": _difference(stated.get("hardware", {}), fingerprint.hardware),
        "software_difference": _difference(stated.get("software", {}), fingerprint.software),
        "started_at": iso_time(datetime.now(timezone.utc)),
        "finished_at": "",
    }
    checks.verification.rerun = rerun
    outcomes: list = []
    comparisons: list[RerunComparison] = []
    with tempfile.TemporaryDirectory(prefix="budgetbench-rerun-") as scratch:
        (source,) = write_sources(submission, Path(scratch) / "method")
        try:  # the enclosed code is a stranger's: it runs only in the sandbox
            prepared = prepare_confined(
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
        loaded = (prepared.method.name, prepared.method.method_hash)
        if not checks.require(
            loaded == (submission.method_name, submission.method_hash),
            "re-run loaded the stated method",
            f"re-run: the enclosed source loads as method {loaded[0]} {loaded[1][:16]}, not the"
            f" stated {submission.method_name} {submission.method_hash[:16]}",
        ):
            return
        machine_id = save_machine(store, fingerprint)
        for _round in range(max_rounds):
            rerun["rounds"] += 1
            for outcome in execute(store, prepared, seeds, machine_id, tracker):
                rerun["run_ids"].append(outcome.run_id)
                where = f"re-run of seed {outcome.seed}"
                if outcome.status != "succeeded":
                    error = (outcome.error or "").splitlines()[0] if outcome.error else ""
                    checks.reject(f"{where}: {outcome.status}: {error}")
                    return
                if outcome.gate_passed is False:
                    checks.reject(f"{where}: missed the quality gate: {outcome.gate_reason}")
                    return
                outcomes.append(outcome)
            comparisons = _compare(submission, context, outcomes)
            if all(c.verdict != INCONCLUSIVE for c in comparisons):
                break
    rerun["finished_at"] = iso_time(datetime.now(timezone.utc))
    checks.verification.comparisons = comparisons
    _judge(checks, comparisons, rerun)


def _compare(submission: Submission, context: _Context, outcomes: list) -> list[RerunComparison]:
    submitted: dict[str, list[float]] = {}
    units: dict[str, str] = {}
    for run in submission.runs:
        for m in run["measurements"]:
            submitted.setdefault(m["name"], []).append(m["value"])
            units[m["name"]] = m["unit"]
    rerun: dict[str, list[float]] = {}
    for outcome in outcomes:
        for name, value in outcome.scalar_values().items():
            rerun.setdefault(name, []).append(value)
    task_cls = context.task_cls
    # The numbers a leaderboard shows; bookkeeping such as the budget spent is not a result.
    compared = set(task_cls.headline_metrics or (m.name for m in task_cls.metrics))
    return [
        _compare_metric(
            name, units[name], submitted[name], rerun[name], context.spec.tolerance(name)
        )
        for name in sorted(set(submitted) & set(rerun) & compared)
    ]


def _compare_metric(
    name: str,
    unit: str,
    submitted: list[float],
    rerun: list[float],
    tolerance: float,
    confidence: float = CONFIDENCE,
) -> RerunComparison:
    """Compare per-seed values on a symmetric scale with a pooled-variance t interval.

    Positive values compare as logarithms: the difference of mean logs is the log of the ratio
    of geometric means, and the band is +-log(1 + tolerance), so x2 and x0.5 are equally far.
    Otherwise the difference of means is divided by the larger absolute mean (symmetric too).
    The spread is pooled from both sides' seeds (n1 + n2 - 2 degrees of freedom); with one value
    on each side there is no spread to judge by, and the interval is unbounded.
    """
    from scipy.stats import t as student_t

    log_scale = all(v > 0 for v in submitted + rerun)
    transform = math.log if log_scale else float
    xs, ys = [transform(v) for v in submitted], [transform(v) for v in rerun]
    difference = statistics.fmean(ys) - statistics.fmean(xs)
    degrees = len(xs) + len(ys) - 2
    if degrees < 1:
        half = math.inf
    else:
        squares = sum((x - statistics.fmean(xs)) ** 2 for x in xs) + sum(
            (y - statistics.fmean(ys)) ** 2 for y in ys
        )
        spread = math.sqrt(squares / degrees)
        quantile = float(student_t.ppf(0.5 + confidence / 2, degrees))
        half = quantile * spread * math.sqrt(1 / len(xs) + 1 / len(ys))
    if log_scale:
        band = math.log1p(tolerance)
        estimate, low, high = (
            math.exp(v) for v in (difference, difference - half, difference + half)
        )
    else:
        scale = max(abs(statistics.fmean(xs)), abs(statistics.fmean(ys))) or 1.0
        band = tolerance
        difference, half = difference / scale, half / scale
        estimate, low, high = difference, difference - half, difference + half
    if -band <= difference - half and difference + half <= band:
        verdict = AGREES
    elif difference - half > band or difference + half < -band:
        verdict = DISAGREES
    else:
        verdict = INCONCLUSIVE
    return RerunComparison(
        name, unit, list(submitted), list(rerun), "log" if log_scale else "linear",
        estimate, low, high, confidence, tolerance, verdict,
    )  # fmt: skip


def _judge(checks: _Checks, comparisons: list[RerunComparison], rerun: dict[str, Any]) -> None:
    if not comparisons:
        checks.warn("the re-run shares no compared metric with the submission: not judged")
        return

    def summary(verdict: str) -> str:
        return "; ".join(f"{c.metric} {_describe(c)}" for c in comparisons if c.verdict == verdict)

    disagree, unsure = summary(DISAGREES), summary(INCONCLUSIVE)
    if not disagree and not unsure:
        checks.require(True, f"re-run agrees on {len(comparisons)} metrics", "")
        return
    if disagree and rerun["same_hardware"]:
        checks.reject(f"re-run on the same hardware disagrees beyond tolerance: {disagree}")
    elif disagree:
        differs = ", ".join(rerun["hardware_difference"]) or "hardware key"
        checks.warn(
            f"re-run on different hardware ({differs}) disagrees: {disagree}; not judged, since"
            " that hardware may explain the gap"
        )
    if unsure:
        checks.warn(
            f"re-run inconclusive after {rerun['rounds']} round(s): the seeds' spread is too"
            f" wide to judge {unsure}"
        )


def _describe(c: RerunComparison) -> str:
    if c.scale == "log":
        return (
            f"x{c.estimate:.3g} of submitted ({CONFIDENCE:.0%} interval"
            f" x{c.low:.3g}..x{c.high:.3g},"
            f" band x{1 / (1 + c.tolerance):.3g}..x{1 + c.tolerance:.3g})"
        )
    return (
        f"{c.estimate:+.1%} of submitted ({CONFIDENCE:.0%} interval {c.low:+.1%}..{c.high:+.1%},"
        f" band +-{c.tolerance:.0%})"
    )


def _difference(submitted: dict[str, Any], here: dict[str, Any]) -> list[str]:
    """The fingerprint fields that differ: `field: submitted -> here`."""
    return [
        f"{key}: {submitted.get(key)!r} -> {here.get(key)!r}"
        for key in sorted(set(submitted) | set(here))
        if submitted.get(key) != here.get(key)
    ]
