"""Running a method that is not trusted: inside a bubblewrap sandbox, with the store outside.

A method is Python code: imported, it can do anything its user can (read `~/.ssh`, open network
connections, delete files). `verify --rerun` runs code from a pull request, and `run --confine`
runs any method file the same way: the method is imported and run only in a child process under
`bwrap`, whose root holds nothing but the system's `/usr` and `/lib*`, the interpreter and its
environment, the checkout holding `harness` and the `PYTHONPATH` entries (all read-only), the
method's own directory (read-only), the cache directory (read-write: tasks keep prepared data
there), a private `/tmp`, and, when present, the NVIDIA device nodes; it has its own user, pid,
ipc, uts, cgroup and network namespaces (no network at all) and dies with its parent.

The harness process never imports the method: `prepare_confined` resolves the settings itself
and asks the sandbox to load the method (`describe`), then hashes the source files it can read.
Each run is done in the sandbox by the real task with an unrecorded context (a `Collector`), which
hands back its measurements as JSON in a file; the harness validates that file as hostile input
(strict JSON, finite numbers, a schema, the task's declared metrics) and records it through the
normal run lifecycle, so only the harness writes the store and the quality gate is judged outside.

What confinement does not do: stop a method from lying about its own numbers (it runs in the same
process as the task inside the sandbox), which is what a re-run on trusted hardware is for; keep
it from writing the cache directory (a method could plant prepared data there for later runs;
bubblewrap 0.8 has no overlay to make it copy-on-write); limit its memory, processes or time.
Artifacts written inside the sandbox are not kept.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

import jsonschema

from harness.errors import InputError
from harness.paths import CHECKOUT_DIR, cache_dir

_INSIDE = Path("/budgetbench-io")
_SYSTEM = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc/alternatives",
           "/etc/ld.so.cache")  # fmt: skip
_PASSED_ENV = ("PYTHONPATH", "CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
               "BUDGETBENCH_DATA_DIR")  # fmt: skip
_NUMBER = {"type": "number"}
RESULT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["error", "measurements", "points", "notes", "timed_s"],
    "properties": {
        "error": {"type": ["string", "null"], "maxLength": 100_000},
        "timed_s": {"type": "number", "minimum": 0},
        "notes": {"type": "object"},
        "measurements": {
            "type": "array",
            "maxItems": 10_000,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "value", "samples"],
                "properties": {
                    "name": {"type": "string"},
                    "value": _NUMBER,
                    "samples": {"type": ["array", "null"], "items": _NUMBER, "maxItems": 100_000},
                },
            },
        },
        "points": {
            "type": "array",
            "maxItems": 1_000_000,
            "items": {
                "type": "array",
                "prefixItems": [{"type": "string"}, _NUMBER, _NUMBER],
                "minItems": 3,
                "maxItems": 3,
            },
        },
    },
}
DESCRIBE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["error", "name", "description", "hyperparameters"],
    "properties": {
        "error": {"type": ["string", "null"], "maxLength": 10_000},
        "name": {"type": "string"},
        "description": {"type": "string"},
        "hyperparameters": {"type": "object"},
    },
}


def bwrap_path() -> str:
    """The sandbox program; InputError (the verifier's setup, not the submission) without it."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise InputError(
            "confined runs need bubblewrap (`bwrap`) on PATH: apt-get install bubblewrap"
        )
    return bwrap


def sandbox_command(argv: list[str], io_dir: Path, readable: list[Path]) -> list[str]:
    """The `bwrap` command line that runs `argv` confined (see the module docstring)."""
    command = [bwrap_path(), "--unshare-all", "--die-with-parent", "--new-session",
               "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]  # fmt: skip
    for path in _SYSTEM:
        command += ["--ro-bind-try", path, path]
    prefixes = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).parent, CHECKOUT_DIR}
    python_path = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    entries = {Path(p).resolve() for p in python_path if p and Path(p).is_dir()}
    for path in sorted(prefixes | entries | set(readable)):
        command += ["--ro-bind", str(path), str(path)]
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    command += ["--bind", str(cache), str(cache), "--bind", str(io_dir), str(_INSIDE)]
    gpus = sorted(Path("/dev").glob("nvidia*"))
    for node in gpus:
        command += ["--dev-bind", str(node), str(node)]
    if gpus:
        command += ["--ro-bind-try", "/sys", "/sys"]
    command += ["--clearenv", "--chdir", "/tmp"]
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8",
           "PYTHONDONTWRITEBYTECODE": "1", "BUDGETBENCH_CACHE_DIR": str(cache)}  # fmt: skip
    env.update({k: os.environ[k] for k in _PASSED_ENV if k in os.environ})
    for key, value in env.items():
        command += ["--setenv", key, value]
    return [*command, *argv]


def _run_child(request: dict[str, Any], readable: list[Path], schema: dict[str, Any]) -> dict:
    """Run `python -m harness.run.confine` in the sandbox; its validated result, or InputError."""
    from harness.submit.bundles import read_json

    with tempfile.TemporaryDirectory(prefix="budgetbench-confined-") as scratch:
        io_dir = Path(scratch)
        (io_dir / "request.json").write_text(json.dumps(request))
        argv = [sys.executable, "-m", "harness.run.confine", str(_INSIDE)]
        returncode = subprocess.run(sandbox_command(argv, io_dir, readable)).returncode
        result_path = io_dir / "result.json"
        if not result_path.is_file():
            raise InputError(
                f"the confined {request['mode']} died (exit {returncode}) without a result"
            )
        result = read_json(result_path)
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(schema).iter_errors(result)
    )
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "top level"
        raise InputError(
            f"the confined {request['mode']} handed back a bad result at {where}: {error.message}"
        )
    return result


def prepare_confined(
    task_name: str,
    method_ref: str,
    profile: str = "smoke",
    device: str = "auto",
    overrides: list[str] | tuple[str, ...] = (),
    suite_version: str | None = None,
    data_dir: Path | None = None,
):
    """`runner.prepare` without importing the method here: a PreparedRun whose task runs each
    seed in the sandbox. `method_ref` is a reference name or a single `.py` file."""
    from harness.registry import load_task
    from harness.run.methods import method_hash, reference_method_path
    from harness.run.runner import PreparedRun, resolve_device
    from harness.spec import load_spec, parse_overrides, resolve_config
    from tasks.base import Method

    task_cls = load_task(task_name)
    settings, _ = parse_overrides(list(overrides))
    spec = load_spec(task_name, suite_version)
    resolved = resolve_config(task_cls, spec, profile, settings)
    is_reference = method_ref in task_cls.reference_methods
    source = (
        reference_method_path(task_cls, method_ref)
        if is_reference
        else Path(method_ref).expanduser()
    )
    if not source.is_file() or source.suffix != ".py":
        raise InputError(f"a confined method is a reference name or one .py file, not {method_ref}")
    source = source.resolve()
    resolved_device = resolve_device(device, task_cls)
    request = {
        "mode": "describe", "task": task_name,
        "method": method_ref if is_reference else str(source),
        "profile": profile, "device": resolved_device, "overrides": list(overrides),
        "suite_version": spec.suite_version, "data_dir": str(data_dir) if data_dir else None,
        "seed": None,
    }  # fmt: skip
    readable = [source.parent] + ([data_dir.resolve()] if data_dir else [])
    described = _run_child(request, readable, DESCRIBE_SCHEMA)
    if described["error"]:
        raise InputError(described["error"])
    hyperparameters = described["hyperparameters"]
    method = Method(
        name=described["name"],
        module=None,  # type: ignore[arg-type]  # never imported here
        hyperparameters=hyperparameters,
        description=described["description"],
        source_files=(source,),
        method_hash=method_hash((source,), hyperparameters),
        is_reference=is_reference,
    )
    task = ConfinedTask(task_cls(), {**request, "mode": "run"}, readable)
    return PreparedRun(task, spec, resolved, method, resolved_device, data_dir)  # type: ignore[arg-type]


class ConfinedTask:
    """Stands in for a task in the harness process: `run` runs the real task in the sandbox and
    records what it hands back; everything else (metrics, the quality gate) is the real task's."""

    def __init__(self, task, request: dict[str, Any], readable: list[Path]) -> None:
        self._task = task
        self._request = request
        self._readable = readable

    def __getattr__(self, name: str) -> Any:
        return getattr(self._task, name)

    def run(self, ctx, method) -> None:
        result = _run_child({**self._request, "seed": ctx.seed}, self._readable, RESULT_SCHEMA)
        for measurement in result["measurements"]:
            ctx.record(measurement["name"], measurement["value"], samples=measurement["samples"])
        for metric, x, value in result["points"]:
            ctx.record_point(metric, x, value)
        for key, value in result["notes"].items():
            ctx.note(key, value)
        ctx.clock.add_timed(result["timed_s"])
        if result["error"]:
            raise RuntimeError(f"in the sandbox: {result['error']}")


def _child(io_dir: Path) -> None:
    """Inside the sandbox: load (and for `run`, run) the method; write result.json."""
    from harness.run.runner import prepare, seed_everything

    request = json.loads((io_dir / "request.json").read_text())
    collector_class = _collector_class()
    result: dict[str, Any]
    try:
        prepared = prepare(
            request["task"], request["method"], request["profile"], request["device"],
            request["overrides"], request["suite_version"],
            Path(request["data_dir"]) if request["data_dir"] else None,
        )  # fmt: skip
    except InputError as exc:
        if request["mode"] == "describe":
            result = {"error": str(exc), "name": "", "description": "", "hyperparameters": {}}
        else:
            result = collector_class.empty_result(f"InputError: {exc}")
        (io_dir / "result.json").write_text(json.dumps(result))
        return
    if request["mode"] == "describe":
        method = prepared.method
        result = {"error": None, "name": method.name, "description": method.description,
                  "hyperparameters": dict(method.hyperparameters)}  # fmt: skip
        (io_dir / "result.json").write_text(json.dumps(result, default=str))
        return
    collector = collector_class(None, "confined", prepared, request["seed"], None)
    error = None
    try:
        seed_everything(request["seed"])
        prepared.task.run(collector, prepared.method)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc()}"
    (io_dir / "result.json").write_text(json.dumps(collector.result(error), default=str))


def _collector_class():
    from harness.run.recorder import RunRecorder
    from harness.store.records import CurvePointRecord, MeasurementRecord

    class Collector(RunRecorder):
        """A run context that keeps everything in memory (no store inside the sandbox)."""

        def _flush(self) -> None:
            pass

        @staticmethod
        def empty_result(error: str) -> dict[str, Any]:
            return {"error": error, "measurements": [], "points": [], "notes": {}, "timed_s": 0.0}

        def result(self, error: str | None) -> dict[str, Any]:
            measurements = [
                {"name": m.name, "value": m.value, "samples": m.samples}
                for m in self._pending
                if isinstance(m, MeasurementRecord)
            ]
            points = [
                [p.metric, p.x, p.value] for p in self._pending if isinstance(p, CurvePointRecord)
            ]
            return {"error": error, "measurements": measurements, "points": points,
                    "notes": self.notes, "timed_s": self.clock.timed_s}  # fmt: skip

    return Collector


if __name__ == "__main__":
    _child(Path(sys.argv[1]))
