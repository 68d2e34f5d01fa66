"""Submissions: one self-contained JSON file per method entry on one task and profile.

A submission carries everything a reviewer needs to judge and re-run it without the submitter's
checkout: the method's source files as text with their hyperparameters and method hash, the
`--set` overrides it ran with, the declared division, the suite and budgetbench versions, and
a bundle (see `harness.submit.bundles`) of its runs and machine. A SHA-256 over the whole file
(beside
the bundle's own) shows whether anything was edited after `budgetbench submit` wrote it.

Divisions (MLPerf's): `closed` changes only the method (its interface functions and
hyperparameters) and runs the profile's settings as the suite states them; `open` may change
anything else (settings overrides included) and must say what in its description.

Reading is strict about shape (a file that is not a submission is unreadable, exit 2);
judging what it says is `harness.submit.verify`'s job.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness import __version__
from harness.errors import InputError
from harness.spec import canonical_json, parse_overrides, sha256_hex
from harness.store import Store
from harness.store.queries import RunFilter
from harness.submit.bundles import (
    build_bundle,
    check_document,
    iso_time,
    read_json,
    validate_bundle,
    write_bundle,
)
from tasks.base import Method

FORMAT = "budgetbench-submission"
FORMAT_VERSION = 1
DIVISIONS = ("closed", "open")
SUFFIX = ".submission.json"
REPORT_SUFFIX = ".verification.json"

_STRING = {"type": "string"}

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": [
        "format", "format_version", "budgetbench_version", "created_at", "sha256", "task",
        "profile", "suite_version", "task_spec_hash", "overrides", "seeds", "division",
        "description", "method", "machine_id", "bundle",
    ],
    "properties": {
        "format": {"const": FORMAT},
        "format_version": {"type": "integer"},
        "budgetbench_version": _STRING,
        "created_at": {"type": "string", "format": "date-time"},
        "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "task": _STRING,
        "profile": _STRING,
        "suite_version": _STRING,
        "task_spec_hash": _STRING,
        "overrides": {"type": "array", "items": _STRING},
        "seeds": {"type": "array", "items": {"type": "integer"}},
        "division": {"enum": list(DIVISIONS)},
        "description": _STRING,
        "method": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "description", "method_hash", "hyperparameters", "files"],
            "properties": {
                "name": _STRING,
                "description": _STRING,
                "method_hash": _STRING,
                "hyperparameters": {"type": "object"},
                "files": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["path", "text"],
                        "properties": {"path": _STRING, "text": _STRING},
                    },
                },
            },
        },
        "machine_id": _STRING,
        "bundle": {"type": "object"},
    },
}  # fmt: skip


@dataclass(frozen=True)
class SourceFile:
    """One enclosed method file: its path relative to the method's root, and its text."""

    path: str
    text: str


@dataclass(frozen=True)
class Submission:
    """A submission file as read (shape checked, content not yet judged)."""

    path: Path
    data: dict[str, Any]

    @property
    def task(self) -> str:
        return self.data["task"]

    @property
    def profile(self) -> str:
        return self.data["profile"]

    @property
    def method_name(self) -> str:
        return self.data["method"]["name"]

    @property
    def method_hash(self) -> str:
        return self.data["method"]["method_hash"]

    @property
    def files(self) -> list[SourceFile]:
        return [SourceFile(f["path"], f["text"]) for f in self.data["method"]["files"]]

    @property
    def bundle(self) -> dict[str, Any]:
        return self.data["bundle"]

    @property
    def runs(self) -> list[dict[str, Any]]:
        return self.bundle["runs"]

    @property
    def machine(self) -> dict[str, Any] | None:
        return next(
            (m for m in self.bundle["machines"] if m["id"] == self.data["machine_id"]), None
        )

    @property
    def settings_overrides(self) -> dict[str, Any]:
        """The `--set` overrides that change the workload (not `hp.` hyperparameters)."""
        return parse_overrides(self.data["overrides"])[0]

    @property
    def stated_sha256(self) -> str:
        return self.data["sha256"]


def submission_hash(data: dict[str, Any]) -> str:
    """SHA-256 over everything in the submission except the checksum itself."""
    return sha256_hex(canonical_json({k: v for k, v in data.items() if k != "sha256"}))


def enclosed_files(method: Method) -> list[SourceFile]:
    """The method's source files as text, paths relative to its root (a file or a package)."""
    sources = method.source_files
    root = sources[0].parent if len(sources) == 1 else _common_root(sources)
    files = []
    for path in sources:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"method source {path} cannot be enclosed as text: {exc}") from exc
        files.append(SourceFile(path.relative_to(root).as_posix(), text))
    return files


def _common_root(paths: Iterable[Path]) -> Path:
    init = next(p for p in paths if p.name == "__init__.py")
    return init.parent.parent


def build_submission(
    store: Store,
    run_ids: list[str],
    method: Method,
    task: str,
    profile: str,
    suite_version: str,
    task_spec_hash: str,
    overrides: list[str],
    division: str,
    description: str,
    machine_id: str,
) -> dict[str, Any]:
    """The submission around stored runs (all of one method, task, profile and machine)."""
    check_division(division, description)
    bundle = build_bundle(store, RunFilter(run_ids=tuple(run_ids)))
    data: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "budgetbench_version": __version__,
        "created_at": iso_time(datetime.now(timezone.utc)),
        "task": task,
        "profile": profile,
        "suite_version": suite_version,
        "task_spec_hash": task_spec_hash,
        "overrides": list(overrides),
        "seeds": sorted(run["seed"] for run in bundle["runs"]),
        "division": division,
        "description": description,
        "method": {
            "name": method.name,
            "description": method.description,
            "method_hash": method.method_hash,
            "hyperparameters": dict(method.hyperparameters),
            "files": [{"path": f.path, "text": f.text} for f in enclosed_files(method)],
        },
        "machine_id": machine_id,
        "bundle": bundle,
    }
    data["sha256"] = submission_hash(data)
    return data


def check_division(division: str, description: str) -> None:
    if division not in DIVISIONS:
        raise InputError(f"--division must be closed or open, got {division!r}")
    if division == "open" and not description.strip():
        raise InputError("an open-division submission needs --description saying what it changed")


def write_submission(data: dict[str, Any], path: Path) -> None:
    """Write atomically (a crash never leaves half a submission)."""
    write_bundle(data, path)


def read_submission(path: Path) -> Submission:
    """Load a submission and check its shape; InputError (exit 2) if it is not one."""
    data = read_json(path)
    check_document(data, path, SCHEMA, FORMAT, FORMAT_VERSION, "submission")
    validate_bundle(data["bundle"], path, check_checksum=False)
    for source in data["method"]["files"]:
        relative = Path(source["path"])
        if relative.is_absolute() or ".." in relative.parts or not source["path"]:
            raise InputError(f"{path}: method file path {source['path']!r} leaves the method")
    return Submission(path, data)


def write_sources(submission: Submission, directory: Path) -> list[Path]:
    """Write the enclosed method files under `directory`; returns their paths in order."""
    written = []
    for source in submission.files:
        target = directory / source.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(source.text, encoding="utf-8")
        written.append(target)
    return written


def submission_files(directory: Path) -> list[Path]:
    """Every `*.submission.json` under `directory` (e.g. `results/<task>/<profile>/`)."""
    return sorted(directory.rglob(f"*{SUFFIX}"))


def report_path(submission_path: Path) -> Path:
    """Where the verification report of a submission lives: beside it."""
    return submission_path.with_name(submission_path.name[: -len(SUFFIX)] + REPORT_SUFFIX)


@dataclass(frozen=True)
class SubmitResult:
    """What `submit` produced: the submission (None when a run failed) and every outcome."""

    data: dict[str, Any] | None
    outcomes: list[Any]
    problem: str = ""


def submit(
    store: Store,
    task: str,
    method_ref: str,
    profile: str,
    seeds: int | None,
    overrides: list[str],
    division: str,
    description: str,
    device: str = "auto",
    data_dir: Path | None = None,
    suite_version: str | None = None,
    tracker=None,
) -> SubmitResult:
    """Run seeds 0..N-1 (N: the profile's required seeds unless given) and build the
    submission. Everything is checked before the first run; a failed run or a missed quality
    gate means no submission (the runs stay in the store for inspection)."""
    from harness.run.machine import collect_fingerprint
    from harness.run.runner import execute, save_machine

    prepared, seeds = prepare_submission(
        task, method_ref, profile, seeds, overrides, division, description, device, data_dir,
        suite_version,
    )  # fmt: skip
    machine_id = save_machine(store, collect_fingerprint())
    outcomes = list(execute(store, prepared, range(seeds), machine_id, tracker))
    return _submission_of(store, prepared, outcomes, overrides, division, description)


def prepare_submission(
    task: str,
    method_ref: str,
    profile: str,
    seeds: int | None,
    overrides: list[str],
    division: str,
    description: str,
    device: str = "auto",
    data_dir: Path | None = None,
    suite_version: str | None = None,
) -> tuple[Any, int]:
    """Check everything a submission needs before any run (division rules, the method, its
    enclosable source, the seed count); returns the prepared run and the seeds to run."""
    from harness.run.runner import prepare

    check_division(division, description)
    settings, _ = parse_overrides(overrides)
    if division == "closed" and settings:
        raise InputError(
            f"the closed division runs the profile as the suite states it; --set"
            f" {', '.join(sorted(settings))} changes the workload (use --division open)"
        )
    prepared = prepare(task, method_ref, profile, device, overrides, suite_version, data_dir)
    required = prepared.spec.seeds_required(profile)
    seeds = required if seeds is None else seeds
    if seeds < required:
        raise InputError(
            f"task {task!r}, profile {profile!r} requires {required} seeds per submission,"
            f" got --seeds {seeds}"
        )
    enclosed_files(prepared.method)  # fail before running if the source cannot be enclosed
    return prepared, seeds


def submit_from_runs(
    store: Store,
    task: str,
    method_ref: str,
    profile: str,
    run_ids: list[str],
    overrides: list[str],
    division: str,
    description: str,
    device: str = "auto",
    data_dir: Path | None = None,
    suite_version: str | None = None,
    *,
    prepared: Any = None,
) -> SubmitResult:
    """The submission around runs already stored (`submit --from-runs`, or runs an executor
    made). They must be what `submit` would have run: this task, profile, task spec and method
    (the same method hash, so the enclosed source is the code that ran), one machine, distinct
    seeds, at least the profile's required number of them; each a one-line InputError.
    `prepared`: what `prepare_submission` returned for these arguments, if the caller has it."""
    from harness.store.queries import get_run

    if prepared is None:
        prepared, _ = prepare_submission(
            task, method_ref, profile, None, overrides, division, description, device, data_dir,
            suite_version,
        )  # fmt: skip
    required = prepared.spec.seeds_required(profile)
    with store.session() as session:
        runs = [get_run(session, run_id) for run_id in run_ids]
    expected = {
        "task": task,
        "profile": profile,
        "task_spec_hash": prepared.resolved.task_spec_hash,
        "method_hash": prepared.method.method_hash,
    }
    for run in runs:
        for field, value in expected.items():
            if getattr(run, field) != value:
                raise InputError(
                    f"run {run.id[:8]} has {field} {getattr(run, field)!r}, not {value!r}:"
                    " it is not a run of this submission's method, task, profile and settings"
                )
    machines = {run.machine_id for run in runs}
    seeds = [run.seed for run in runs]
    if len(machines) > 1:
        raise InputError(f"the runs were made on {len(machines)} machines; a submission is one")
    if len(set(seeds)) != len(seeds):
        raise InputError(f"the runs repeat a seed ({sorted(seeds)}): each seed once")
    if len(seeds) < required:
        raise InputError(
            f"task {task!r}, profile {profile!r} requires {required} seeds per submission,"
            f" got {len(seeds)} run(s)"
        )
    return _submission_of(store, prepared, runs, overrides, division, description)


def _submission_of(
    store: Store,
    prepared: Any,
    outcomes: list[Any],
    overrides: list[str],
    division: str,
    description: str,
) -> SubmitResult:
    """The submission around `outcomes`, or why there is none (a failed run or missed gate)."""
    for outcome in outcomes:
        if outcome.status != "succeeded":
            first_line = (outcome.error or "").splitlines()[0] if outcome.error else ""
            return SubmitResult(None, outcomes, f"seed {outcome.seed} failed: {first_line}")
        if outcome.gate_passed is False:
            return SubmitResult(
                None,
                outcomes,
                f"seed {outcome.seed} missed the quality gate: {outcome.gate_reason}",
            )
    machine_id = outcomes[0].machine_id
    data = build_submission(
        store,
        [o.run_id for o in outcomes],
        prepared.method,
        prepared.task.name,
        prepared.resolved.profile,
        prepared.spec.suite_version,
        prepared.resolved.task_spec_hash,
        overrides,
        division,
        description,
        machine_id,
    )
    return SubmitResult(data, outcomes)


def publishable_submission(
    data: dict[str, Any], include_private: bool = False
) -> tuple[dict[str, Any], list[str]]:
    """What `submit` writes: the bundle with its artifacts enclosed and, unless
    `include_private`, without host, user, process id, command line or paths (see
    `harness.submit.bundles.publishable_bundle`), the checksum recomputed; and a line per artifact
    that could not be enclosed."""
    from harness.submit.bundles import publishable_bundle

    bundle, left_out = publishable_bundle(data["bundle"], include_private)
    published = {**data, "bundle": bundle}
    published["sha256"] = submission_hash(published)
    return published, left_out


# Optional fields a submitter adds at submit time: who they are, where the paper or code is,
# and the suite entry (a method family across tasks) the submission belongs to.
OPTIONAL_FIELDS: dict[str, Any] = {
    "submitter": {"type": "string", "maxLength": 200},
    "links": {
        "type": "array",
        "maxItems": 5,
        "items": {"type": "string", "maxLength": 500, "pattern": "^https?://[^\\s]+$"},
    },
    "suite_entry": {"type": "string", "maxLength": 100, "pattern": "^[A-Za-z0-9][A-Za-z0-9 ._-]*$"},
}
SCHEMA["properties"].update(OPTIONAL_FIELDS)


def with_submitter(
    data: dict[str, Any], submitter: str | None, links: list[str], suite_entry: str | None
) -> dict[str, Any]:
    """The submission with the optional fields that were given, checked, checksum recomputed."""
    import jsonschema

    extra: dict[str, Any] = {}
    if submitter:
        extra["submitter"] = submitter
    if links:
        extra["links"] = list(links)
    if suite_entry:
        extra["suite_entry"] = suite_entry
    for key, value in extra.items():
        try:
            jsonschema.validate(value, OPTIONAL_FIELDS[key])
        except jsonschema.ValidationError as exc:
            option = {"links": "--link"}.get(key, f"--{key.replace('_', '-')}")
            raise InputError(f"{option} {value!r}: {exc.message}") from None
        if isinstance(value, str) and not value.isprintable():
            raise InputError(f"--{key.replace('_', '-')} must not hold control characters")
    updated = {**data, **extra}
    updated["sha256"] = submission_hash(updated)
    return updated
