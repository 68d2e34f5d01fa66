"""Bundles: the portable, versioned JSON form of runs with their machines and provenance.

A bundle carries a SHA-256 over its content, so truncation or tampering is caught. Import checks
the schema, the format version, the checksum and internal consistency (machine ids match their
fingerprints, runs point at machines in the bundle) before touching the database, then writes
everything in one transaction: a bad bundle changes nothing, and importing a bundle twice adds
nothing the second time. A run that exists with different content is a conflict, not a merge.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jsonschema

from harness import __version__
from harness.errors import InputError
from harness.paths import slug
from harness.run.machine import MachineFingerprint
from harness.spec import canonical_json, sha256_hex
from harness.store import Store
from harness.store.limits import INT64
from harness.store.queries import RunFilter, find_runs
from harness.store.records import ArtifactRecord, MachineRecord, RunRecord, utc_iso
from harness.store.runs import import_runs

FORMAT = "budgetbench-bundle"
FORMAT_VERSION = 1

_STRING = {"type": "string"}
_NUMBER = {"type": "number"}
_TIME = {"type": "string", "format": "date-time"}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def _with_optional(schema: dict[str, Any], **optional: dict[str, Any]) -> dict[str, Any]:
    """`schema` with extra properties that may be left out."""
    return {**schema, "properties": {**schema["properties"], **optional}}


SCHEMA: dict[str, Any] = _object(
    {
        "format": {"const": FORMAT},
        "format_version": {"type": "integer"},
        "budgetbench_version": _STRING,
        "created_at": _TIME,
        "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "machines": {
            "type": "array",
            "items": _object(
                {
                    "id": _STRING,
                    "hardware_key": _STRING,
                    "software_key": _STRING,
                    "hardware_label": _STRING,
                    "fingerprint": _object(
                        {"hardware": {"type": "object"}, "software": {"type": "object"}}
                    ),
                    "first_seen_at": _TIME,
                }
            ),
        },
        "runs": {
            "type": "array",
            "items": _object(
                {
                    "id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
                    "task": _STRING,
                    "suite_version": _STRING,
                    "spec_version": {"type": "integer"},
                    "task_spec_hash": _STRING,
                    "profile": _STRING,
                    "method_name": _STRING,
                    "method_hash": _STRING,
                    "method_description": _STRING,
                    "is_reference_method": {"type": "boolean"},
                    "seed": {"type": "integer", "minimum": 0},
                    "device": _STRING,
                    "status": {"enum": ["succeeded", "failed", "invalid"]},
                    "error": {"type": ["string", "null"]},
                    "gate_passed": {"type": ["boolean", "null"]},
                    "gate_reason": _STRING,
                    "settings": {"type": "object"},
                    "hyperparameters": {"type": "object"},
                    "provenance": {"type": "object"},
                    "machine_id": _STRING,
                    "hardware_key": _STRING,
                    "software_key": _STRING,
                    "started_at": _TIME,
                    "finished_at": _TIME,
                    "wall_s": {"type": ["number", "null"], "minimum": 0},
                    "timed_s": {"type": ["number", "null"], "minimum": 0},
                    "measurements": {
                        "type": "array",
                        "items": _object(
                            {
                                "name": _STRING,
                                "value": _NUMBER,
                                "unit": _STRING,
                                "higher_is_better": {"type": "boolean"},
                                "samples": {"type": ["array", "null"], "items": _NUMBER},
                            }
                        ),
                    },
                    "curve_points": {
                        "type": "array",
                        "items": _object(
                            {
                                "metric": _STRING,
                                "x": _NUMBER,
                                "x_unit": _STRING,
                                "value": _NUMBER,
                                "unit": _STRING,
                            }
                        ),
                    },
                    "artifacts": {
                        "type": "array",
                        "items": _with_optional(
                            _object(
                                {
                                    "name": _STRING,
                                    "uri": _STRING,
                                    "media_type": _STRING,
                                    "size_bytes": {"type": "integer", "minimum": 0},
                                    "sha256": _STRING,
                                }
                            ),
                            content={"type": "string", "contentEncoding": "base64"},
                        ),
                    },
                }
            ),
        },
    }
)


@dataclass(frozen=True)
class ImportResult:
    runs_added: int
    runs_already_present: int
    machines_added: int


iso_time = utc_iso
"""An aware time (the store always returns UTC) in the bundle's ISO form."""


def machine_to_dict(machine: MachineRecord) -> dict[str, Any]:
    """The bundle form of a machine."""
    return machine.to_dict()


def run_to_dict(run: RunRecord) -> dict[str, Any]:
    """The bundle form of a finished run (children included)."""
    return run.to_dict()


def records_from_bundle(bundle: dict[str, Any]) -> list[RunRecord]:
    """The runs of a validated bundle (`validate_bundle`) as records, each with its machine:
    what a reader of bundles (the site) needs, without a database."""
    machines = {m["id"]: MachineRecord.from_dict(m) for m in bundle["machines"]}
    return [RunRecord.from_dict(run, machines.get(run["machine_id"])) for run in bundle["runs"]]


def build_bundle(store: Store, run_filter: RunFilter) -> dict[str, Any]:
    """A bundle of the finished runs matching the filter (running runs are left out)."""
    with store.session() as session:
        runs = [r for r in find_runs(session, run_filter) if r.status != "running"]
    runs.sort(key=lambda r: (r.started_at, r.id))
    machines = {r.machine_id: machine_to_dict(r.machine) for r in runs if r.machine is not None}
    return assemble_bundle(
        [machines[key] for key in sorted(machines)], [run_to_dict(r) for r in runs]
    )


def assemble_bundle(machines: list[dict[str, Any]], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """A bundle around machine and run records (in their bundle form), with its checksum."""
    content = {"machines": machines, "runs": runs}
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "budgetbench_version": __version__,
        "created_at": iso_time(datetime.now(timezone.utc)),
        "sha256": content_hash(content),
        **content,
    }


def content_hash(content: dict[str, Any]) -> str:
    return sha256_hex(canonical_json({"machines": content["machines"], "runs": content["runs"]}))


def write_bundle(bundle: dict[str, Any], path: Path) -> None:
    """Write atomically: a crash mid-write never leaves a truncated bundle behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(bundle, indent=1, sort_keys=True, allow_nan=False) + "\n")
    temporary.replace(path)


def read_json(path: Path) -> Any:
    """Parse a JSON file strictly (no NaN or Infinity); InputError names the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a JSON file (not UTF-8 text)") from None
    try:
        return json.loads(
            text, parse_constant=_reject_constant, parse_float=_finite, parse_int=_int64
        )
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}): truncated?"
        ) from exc
    except ValueError as exc:  # a number no store can hold, from the hooks below
        raise InputError(f"{path}: {exc}") from None


def read_bundle(path: Path) -> dict[str, Any]:
    """Load and fully validate a bundle file; raises InputError naming the file and the problem."""
    return validate_bundle(read_json(path), path)


def validate_bundle(bundle: Any, path: Path, check_checksum: bool = True) -> dict[str, Any]:
    """Check schema, format version, checksum and consistency; `path` names it in errors.

    `check_checksum=False` is for a verifier that reports a checksum mismatch itself and goes on
    to find every other problem."""
    check_document(bundle, path, SCHEMA, FORMAT, FORMAT_VERSION, "bundle")
    if bundle["format_version"] != FORMAT_VERSION:
        raise InputError(f"{path}: unsupported bundle format version {bundle['format_version']}")
    if check_checksum and content_hash(bundle) != bundle["sha256"]:
        raise InputError(f"{path}: checksum mismatch: the bundle was modified after export")
    _check_consistency(path, bundle)
    check_artifact_contents(path, bundle)
    return bundle


def check_document(
    document: Any, path: Path, schema: dict[str, Any], fmt: str, version: int, kind: str
) -> None:
    """Check a versioned JSON document against its schema; InputError names the first problem.
    A newer format version is named as such rather than as a schema error."""
    if isinstance(document, dict) and document.get("format") == fmt:
        found = document.get("format_version")
        if isinstance(found, int) and found > version:
            raise InputError(
                f"{path}: {kind} format version {found} is newer than this budgetbench"
                f" supports ({version})"
            )
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    error = jsonschema.exceptions.best_match(validator.iter_errors(document))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "top level"
        raise InputError(f"{path}: not a valid budgetbench {kind} at {where}: {error.message}")


def _reject_constant(name: str) -> float:
    raise json.JSONDecodeError(f"{name} is not a number a bundle may hold", name, 0)


def _finite(text: str) -> float:
    """`1e400` parses to infinity: refuse it like `Infinity`."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is out of range (not a finite double)")
    return value


def _int64(text: str) -> int:
    """Integers beyond 64 bits fit no column of either backend (and 10^5000 is slow to parse)."""
    if len(text.lstrip("-")) > 19 or not INT64[0] <= int(text) <= INT64[1]:
        raise ValueError(
            f"the integer {text[:40]}{'...' if len(text) > 40 else ''} is out of range"
        )
    return int(text)


def _check_consistency(path: Path, bundle: dict[str, Any]) -> None:
    machines: dict[str, dict[str, Any]] = {}
    for machine in bundle["machines"]:
        _check_time(path, machine["first_seen_at"])
        fingerprint = MachineFingerprint(**machine["fingerprint"])
        if (fingerprint.id, fingerprint.hardware_key, fingerprint.software_key) != (
            machine["id"], machine["hardware_key"], machine["software_key"],
        ):  # fmt: skip
            raise InputError(f"{path}: machine {machine['id']}: keys do not match its fingerprint")
        if machine["id"] in machines:
            raise InputError(f"{path}: machine {machine['id']} appears twice")
        machines[machine["id"]] = machine
    seen_runs: set[str] = set()
    for run in bundle["runs"]:
        where = f"{path}: run {run['id']}"
        if run["id"] in seen_runs:
            raise InputError(f"{where}: appears twice")
        seen_runs.add(run["id"])
        started, finished = _check_time(path, run["started_at"]), None
        if run["finished_at"] is not None:
            finished = _check_time(path, run["finished_at"])
        if finished is not None and finished < started:
            raise InputError(f"{where}: finished at {run['finished_at']}, before it started")
        machine = machines.get(run["machine_id"])
        if machine is None:
            raise InputError(f"{where}: its machine {run['machine_id']} is not in the bundle")
        if (run["hardware_key"], run["software_key"]) != (
            machine["hardware_key"],
            machine["software_key"],
        ):
            raise InputError(f"{where}: hardware/software keys differ from its machine's")
        names = [m["name"] for m in run["measurements"]]
        if len(names) != len(set(names)):
            raise InputError(f"{where}: a measurement name appears twice")
        artifact_names = [a["name"] for a in run["artifacts"]]
        if len(artifact_names) != len(set(artifact_names)):
            raise InputError(f"{where}: an artifact name appears twice")


def _check_time(path: Path, text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"{path}: {text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise InputError(f"{path}: time {text!r} has no time zone")
    return moment


def bundle_files(directory: Path) -> list[Path]:
    """The bundle files (`*.json`) in a directory, in name order."""
    if not directory.is_dir():
        raise InputError(f"{directory} is not a directory")
    files = sorted(directory.glob("*.json"))
    if not files:
        raise InputError(f"{directory} holds no bundles (*.json)")
    return files


def import_bundles(store: Store, paths: list[Path]) -> ImportResult:
    """Validate every file, then import them all in one transaction (all or nothing)."""
    return import_validated(store, [(path, read_bundle(path)) for path in paths])


def import_validated(store: Store, bundles: list[tuple[Path, dict[str, Any]]]) -> ImportResult:
    """Import bundles that passed `validate_bundle`, in one transaction."""
    bundles = [(path, store_artifact_contents(store, bundle)) for path, bundle in bundles]
    batches = [
        (
            str(path),
            [MachineRecord.from_dict(m) for m in bundle["machines"]],
            [RunRecord.from_dict(r) for r in bundle["runs"]],
        )
        for path, bundle in bundles
    ]
    return ImportResult(*import_runs(store, batches))


# Publishing: what leaves the store. The store (and `show`) keeps everything a run recorded;
# a published bundle, submission or site page leaves out who ran it and where, unless the user
# opts in (`--include-private`).

PRIVATE_PROVENANCE = ("hostname", "user", "pid", "command")
"""Provenance keys that name a person, a host or a process: kept in the store, not published."""

_ABSOLUTE_PATH = re.compile(r"(?<![\w.~])(?:[A-Za-z]:)?[/\\](?:[^\s/\\\"'<>:]+[/\\])+")


def public_run_dict(run: dict[str, Any]) -> dict[str, Any]:
    """A run's bundle form without personal data: the private provenance keys dropped, artifact
    locations reduced to file names, and the run's own host and user name and every directory
    path scrubbed from the provenance and error texts (tracebacks keep their file names)."""
    provenance = dict(run["provenance"])
    names = [str(provenance.get(key) or "") for key in ("hostname", "user")]
    for key in PRIVATE_PROVENANCE:
        provenance.pop(key, None)
    return {
        **run,
        "provenance": _scrub_value(provenance, names),
        "error": None if run["error"] is None else scrub_text(run["error"], names),
        "gate_reason": scrub_text(run["gate_reason"], names),
        "artifacts": [
            {**artifact, "uri": _file_name(artifact["uri"])} for artifact in run["artifacts"]
        ],
    }


def scrub_text(text: str, names: list[str]) -> str:
    """`text` with directory paths shortened to `…/` and each of `names` (a host, a user)
    replaced by `<private>` (names under three characters are left: too common to find)."""
    text = _ABSOLUTE_PATH.sub("…/", text)
    for name in names:
        if len(name) >= 3:
            text = re.sub(rf"\b{re.escape(name)}\b", "<private>", text)
    return text


def _scrub_value(value: Any, names: list[str]) -> Any:
    if isinstance(value, str):
        return scrub_text(value, names)
    if isinstance(value, list):
        return [_scrub_value(item, names) for item in value]
    if isinstance(value, dict):
        return {key: _scrub_value(item, names) for key, item in value.items()}
    return value


def _file_name(location: str) -> str:
    return re.split(r"[/\\]", location.rstrip("/\\"))[-1]


def publishable_bundle(
    bundle: dict[str, Any], include_private: bool = False
) -> tuple[dict[str, Any], list[str]]:
    """What `export` and `submit` write: the bundle with its artifacts enclosed and, unless
    `include_private`, in public form; and a line per artifact that could not be enclosed."""
    bundle, left_out = with_artifact_contents(bundle)
    return (bundle if include_private else public_bundle(bundle)), left_out


def public_bundle(bundle: dict[str, Any]) -> dict[str, Any]:
    """The bundle with every run in its public form (`public_run_dict`), checksum recomputed."""
    return assemble_bundle(bundle["machines"], [public_run_dict(run) for run in bundle["runs"]])


# Artifacts travel inside published bundles: each file's bytes as base64 beside its metadata,
# covered by the bundle's checksum, capped in size, and checked against the stated size and
# sha256 on import, when they are written under the importing store's artifact root.

ARTIFACT_MAX_BYTES = 8 * 1024 * 1024
"""The largest artifact a bundle carries (plots, verdict logs; not checkpoints)."""
BUNDLE_ARTIFACTS_MAX_BYTES = 32 * 1024 * 1024
"""The most artifact bytes one bundle carries in all (it is meant for a git repository)."""


def artifact_path(location: str) -> Path | None:
    """The local file behind an artifact's uri, if it is a `file://` uri."""
    from urllib.parse import unquote, urlparse

    parsed = urlparse(location)
    if parsed.scheme != "file":
        return None
    return Path(unquote(parsed.path))


def read_artifact(artifact: dict[str, Any] | ArtifactRecord) -> bytes | None:
    """An artifact's bytes from its local file, or None when the file is missing, too large or
    no longer matches the size and sha256 the run recorded."""
    keys = ("uri", "size_bytes", "sha256")
    fields = artifact if isinstance(artifact, dict) else {k: getattr(artifact, k) for k in keys}
    path = artifact_path(fields["uri"])
    if path is None or not path.is_file() or path.stat().st_size != fields["size_bytes"]:
        return None
    if fields["size_bytes"] > ARTIFACT_MAX_BYTES:
        return None
    data = path.read_bytes()
    return data if hashlib.sha256(data).hexdigest() == fields["sha256"] else None


def with_artifact_contents(bundle: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The bundle with each artifact's bytes enclosed (checksum recomputed), and a line for
    each artifact left out (missing, changed since the run, or over a size cap)."""
    left_out: list[str] = []
    total = 0
    runs = []
    for run in bundle["runs"]:
        artifacts = []
        for artifact in run["artifacts"]:
            data = read_artifact(artifact)
            where = f"run {run['id'][:8]} artifact {artifact['name']!r}"
            if data is None:
                left_out.append(f"{where}: file missing, changed or over {ARTIFACT_MAX_BYTES} B")
            elif total + len(data) > BUNDLE_ARTIFACTS_MAX_BYTES:
                left_out.append(f"{where}: the bundle's {BUNDLE_ARTIFACTS_MAX_BYTES} B are used")
            else:
                total += len(data)
                artifact = {**artifact, "content": base64.b64encode(data).decode("ascii")}
            artifacts.append(artifact)
        runs.append({**run, "artifacts": artifacts})
    return assemble_bundle(bundle["machines"], runs), left_out


def check_artifact_contents(path: Path, bundle: dict[str, Any]) -> None:
    """Enclosed artifact bytes are strict base64, within the caps, and match the stated size
    and sha256 (a hostile bundle cannot plant other bytes under a trusted checksum)."""
    total = 0
    for run in bundle["runs"]:
        for artifact in run["artifacts"]:
            if "content" not in artifact:
                continue
            where = f"{path}: run {run['id']} artifact {artifact['name']!r}"
            data = _decode(where, artifact["content"])
            total += len(data)
            if len(data) > ARTIFACT_MAX_BYTES or total > BUNDLE_ARTIFACTS_MAX_BYTES:
                raise InputError(f"{where}: enclosed artifacts exceed the size cap")
            if len(data) != artifact["size_bytes"]:
                raise InputError(f"{where}: {len(data)} bytes enclosed, size_bytes says otherwise")
            if hashlib.sha256(data).hexdigest() != artifact["sha256"]:
                raise InputError(f"{where}: enclosed bytes do not match its sha256")


def _decode(where: str, content: str) -> bytes:
    if len(content) > (ARTIFACT_MAX_BYTES * 4) // 3 + 4:
        raise InputError(f"{where}: enclosed artifacts exceed the size cap")
    try:
        return base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError):
        raise InputError(f"{where}: enclosed content is not base64") from None


def store_artifact_contents(store: Store, bundle: dict[str, Any]) -> dict[str, Any]:
    """Write a validated bundle's enclosed artifacts under the store's artifact root (one
    folder per run, files named by hash and slug, never by the bundle's strings) and return the
    bundle as the store records it: each such artifact's uri pointing at its file."""
    if not any("content" in a for run in bundle["runs"] for a in run["artifacts"]):
        return bundle
    runs = []
    for run in bundle["runs"]:
        artifacts = []
        for artifact in run["artifacts"]:
            if "content" in artifact:
                artifact = dict(artifact)
                data = base64.b64decode(artifact.pop("content"), validate=True)
                folder = store.artifact_root / slug(run["id"])
                target = folder / f"{artifact['sha256'][:16]}-{slug(artifact['name'])}"
                if not target.is_file() or target.read_bytes() != data:
                    folder.mkdir(parents=True, exist_ok=True)
                    temporary = target.with_name(f".{target.name}.tmp")
                    temporary.write_bytes(data)
                    temporary.replace(target)
                artifact["uri"] = target.as_uri()
            artifacts.append(artifact)
        runs.append({**run, "artifacts": artifacts})
    return {**bundle, "runs": runs}
