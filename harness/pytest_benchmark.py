"""pytest-benchmark results as budgetbench runs, so any micro-benchmark suite gets the same
store, regression tracking and pages.

Each benchmark of a `--benchmark-json` file becomes a succeeded run of the pseudo-task
`pytest-benchmark`: the benchmark's full name is the method, its group the profile, and its
statistics the measurements (seconds per call, lower is better; the raw rounds when the file was
saved with `--benchmark-save-data`). The machine comes from `machine_info` (budgetbench's own
fingerprint there when its pytest plugin was active); the commit from
`commit_info` is part of the software fingerprint, so a regression points at the commit that
caused it. Run ids derive from the file's content, so importing a file twice adds nothing.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.errors import InputError
from harness.run.machine import MachineFingerprint
from harness.spec import canonical_json, sha256_hex
from harness.submit.bundles import assemble_bundle, iso_time, read_json, validate_bundle

TASK = "pytest-benchmark"

# (measurement name, stats key, unit, higher is better)
STATISTICS = (
    ("median_s", "median", "s", False),
    ("mean_s", "mean", "s", False),
    ("min_s", "min", "s", False),
    ("stddev_s", "stddev", "s", False),
    ("ops", "ops", "1/s", True),
)


def bundle_from_pytest_benchmark(path: Path) -> dict[str, Any]:
    """Convert a pytest-benchmark JSON file into a validated bundle."""
    data = read_json(path)
    if not isinstance(data, dict) or not {"machine_info", "benchmarks", "datetime"} <= set(data):
        raise InputError(
            f"{path}: not a pytest-benchmark JSON file (needs machine_info, benchmarks, datetime)"
        )
    try:
        return validate_bundle(_convert(data, path), path)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(
            f"{path}: malformed pytest-benchmark file: {type(exc).__name__}: {exc}"
        ) from exc


def _convert(data: dict[str, Any], path: Path) -> dict[str, Any]:
    commit = data.get("commit_info") or {}
    fingerprint = _fingerprint(data["machine_info"], commit)
    when = datetime.fromisoformat(data["datetime"])
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    machine = {
        "id": fingerprint.id,
        "hardware_key": fingerprint.hardware_key,
        "software_key": fingerprint.software_key,
        "hardware_label": fingerprint.hardware_label,
        "fingerprint": fingerprint.as_dict(),
        "first_seen_at": iso_time(when),
    }
    file_identity = sha256_hex(canonical_json(data))
    runs = [
        _run(b, fingerprint, when, commit, data.get("version"), file_identity)
        for b in data["benchmarks"]
    ]
    return assemble_bundle([machine] if runs else [], runs)


def _fingerprint(info: dict[str, Any], commit: dict[str, Any]) -> MachineFingerprint:
    """The machine that ran the benchmarks. With budgetbench installed there, its pytest plugin
    (`harness.pytest_plugin`) stored budgetbench's own fingerprint in `machine_info`: its hardware
    is taken as it is, so the machine's history is one with its budgetbench runs (the same
    hardware key), and the commit joins its software. Otherwise the fingerprint is rebuilt from
    pytest-benchmark's fields (fewer: no RAM or GPUs), a hardware key of its own."""
    own = info.get("budgetbench")
    if isinstance(own, dict) and isinstance(own.get("hardware"), dict):
        software = own.get("software") if isinstance(own.get("software"), dict) else {}
        return MachineFingerprint(
            hardware=own["hardware"],
            software={
                **software,
                "project": commit.get("project"),
                "commit": commit.get("id"),
                "commit_dirty": commit.get("dirty"),
            },
        )
    cpu = info.get("cpu") or {}
    hardware = {
        "cpu_model": cpu.get("brand_raw") or info.get("processor") or "unknown CPU",
        "cpu_logical_cores": int(cpu.get("count") or 0),
        "cpu_physical_cores": 0,
        "ram_gib": None,
        "architecture": info.get("machine", ""),
        "gpus": [],
    }
    software = {
        "os": info.get("system", ""),
        "os_release": info.get("release", ""),
        "python": info.get("python_version", ""),
        "python_implementation": info.get("python_implementation", ""),
        "packages": {},
        "project": commit.get("project"),
        "commit": commit.get("id"),
        "commit_dirty": commit.get("dirty"),
    }
    return MachineFingerprint(hardware=hardware, software=software)


def _run(
    benchmark: dict[str, Any],
    fingerprint: MachineFingerprint,
    when: datetime,
    commit: dict[str, Any],
    version: str | None,
    file_identity: str,
) -> dict[str, Any]:
    stats = benchmark["stats"]
    name = benchmark["fullname"]
    params = benchmark.get("params") or {}
    group = benchmark.get("group") or "default"
    raw = stats.get("data")
    measurements = []
    for measurement, key, unit, higher_is_better in STATISTICS:
        if stats.get(key) is None:
            continue
        samples = None
        if key == "median" and raw:
            iterations = stats.get("iterations") or 1
            samples = [float(value) / iterations for value in raw]
        measurements.append(
            {
                "name": measurement,
                "value": float(stats[key]),
                "unit": unit,
                "higher_is_better": higher_is_better,
                "samples": samples,
            }
        )
    return {
        "id": sha256_hex(f"{file_identity}:{name}")[:32],
        "task": TASK,
        "suite_version": "external",
        "spec_version": 1,
        "task_spec_hash": sha256_hex(canonical_json({"task": TASK, "group": group})),
        "profile": group,
        "method_name": name,
        "method_hash": sha256_hex(canonical_json({"fullname": name, "params": params})),
        "method_description": f"pytest-benchmark {name}",
        "is_reference_method": False,
        "seed": 0,
        "device": "cpu",
        "status": "succeeded",
        "error": None,
        "gate_passed": None,
        "gate_reason": "",
        "settings": benchmark.get("options") or {},
        "hyperparameters": params,
        "provenance": {
            "source": "pytest-benchmark",
            "pytest_benchmark_version": version,
            "commit_info": commit,
            "git_commit": commit.get("id"),
            "extra_info": benchmark.get("extra_info") or {},
            "rounds": stats.get("rounds"),
            "iterations": stats.get("iterations"),
        },
        "machine_id": fingerprint.id,
        "hardware_key": fingerprint.hardware_key,
        "software_key": fingerprint.software_key,
        "started_at": iso_time(when),
        "finished_at": iso_time(when),
        "wall_s": float(stats["total"]) if stats.get("total") is not None else None,
        "timed_s": float(stats["total"]) if stats.get("total") is not None else None,
        "measurements": measurements,
        "curve_points": [],
        "artifacts": [],
    }
