"""Versioned suite specs (`suite/vN/<task>.toml`) and the resolution of a profile's settings.

A profile's table must match the task's `config_type` dataclass exactly: unknown keys and wrong
types are errors, so a typo never silently runs the default. The *task-spec hash* covers the task,
suite version, spec version, profile and every resolved setting (overrides included): results
compare only under the same hash.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import sys
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import InputError
from harness.paths import suite_root

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

HYPERPARAMETER_PREFIX = "hp."
REQUIRED_SEEDS_KEY = "required_seeds"
SUITE_METHODS_KEY = "suite_methods"
DEFAULT_TOLERANCE = 0.10
"""Relative difference a re-run may show from submitted numbers when a spec states none."""


def default_required_seeds(profile: str) -> int:
    """Seeds a submission needs when its profile names none: 1 for smoke profiles, else 3."""
    return 1 if profile.startswith("smoke") else 3


@dataclass(frozen=True)
class TaskSpec:
    """One task's frozen settings in one suite version, with its named profiles."""

    task: str
    suite_version: str
    version: int
    description: str
    profiles: dict[str, dict[str, Any]]
    path: Path
    references: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    """Published results shown beside the leaderboard ([[references]]: name, source, metrics,
    and optionally `profiles`, the only profiles whose conditions match the publication's)."""
    required_seeds: dict[str, int] = dataclasses.field(default_factory=dict)
    """Seeds a submission must run per profile (a profile's optional `required_seeds` key)."""
    tolerances: dict[str, float] = dataclasses.field(default_factory=dict)
    """Relative tolerance per metric for re-runs (`[tolerance]`; its `default` key for the rest)."""

    suite_methods: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    """Reference methods `suite run` runs per profile (a profile's optional `suite_methods` key;
    default all). Lets a quick profile run a representative few of a task with many."""

    def seeds_required(self, profile: str) -> int:
        return self.required_seeds.get(profile, default_required_seeds(profile))

    def tolerance(self, metric: str) -> float:
        return self.tolerances.get(metric, self.tolerances.get("default", DEFAULT_TOLERANCE))


@dataclass(frozen=True)
class ResolvedConfig:
    """A profile's settings after overrides: the typed config object and its identity."""

    profile: str
    config: Any
    settings: dict[str, Any]
    task_spec_hash: str


def canonical_json(value: Any) -> str:
    """The JSON text hashes are computed over: sorted keys, no whitespace."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def sha256_hex(text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()


def suite_versions(root: Path | None = None) -> list[str]:
    """Suite versions present, oldest first (`v1`, `v2`, ...)."""
    root = root or suite_root()
    found = [p.name for p in root.glob("v*") if p.is_dir() and re.fullmatch(r"v\d+", p.name)]
    return sorted(found, key=lambda v: int(v[1:]))


def latest_suite_version() -> str:
    versions = suite_versions()
    if not versions:
        raise InputError(f"no suite versions found under {suite_root()}")
    return versions[-1]


def spec_task_names(suite_version: str) -> list[str]:
    """Tasks that have a spec in this suite version."""
    directory = suite_root() / suite_version
    return sorted(p.stem for p in directory.glob("*.toml"))


def load_spec(task: str, suite_version: str | None = None) -> TaskSpec:
    """Read and check `suite/<version>/<task>.toml`."""
    suite_version = suite_version or latest_suite_version()
    path = suite_root() / suite_version / f"{task}.toml"
    if not path.is_file():
        raise InputError(f"suite {suite_version} has no spec for task {task!r} ({path})")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: invalid TOML: {exc}") from exc
    if data.get("task") != task:
        raise InputError(f"{path}: 'task' must be {task!r}, found {data.get('task')!r}")
    profiles = data.get("profiles")
    if not isinstance(profiles, dict) or not profiles:
        raise InputError(f"{path}: needs at least one [profiles.NAME] table")
    version = data.get("version")
    if not isinstance(version, int):
        raise InputError(f"{path}: 'version' must be an integer")
    required_seeds: dict[str, int] = {}
    suite_methods: dict[str, tuple[str, ...]] = {}
    settings_only: dict[str, dict[str, Any]] = {}
    for name, table in profiles.items():
        if not isinstance(table, dict):
            raise InputError(f"{path}: profiles.{name} must be a table")
        table = dict(table)
        seeds = table.pop(REQUIRED_SEEDS_KEY, default_required_seeds(name))
        if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
            raise InputError(
                f"{path}: profiles.{name}.{REQUIRED_SEEDS_KEY} must be an integer >= 1"
            )
        required_seeds[name] = seeds
        methods = table.pop(SUITE_METHODS_KEY, None)
        if methods is not None:
            if not isinstance(methods, list) or not all(isinstance(m, str) for m in methods):
                raise InputError(f"{path}: profiles.{name}.{SUITE_METHODS_KEY} must list names")
            suite_methods[name] = tuple(methods)
        settings_only[name] = table
    tolerances = data.get("tolerance", {})
    if not isinstance(tolerances, dict) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and v >= 0
        for v in tolerances.values()
    ):
        raise InputError(f"{path}: [tolerance] must map metric names to numbers >= 0")
    references = data.get("references", [])
    if not isinstance(references, list) or not all(isinstance(r, dict) for r in references):
        raise InputError(f"{path}: references must be [[references]] tables")
    for reference in references:
        shown_on = reference.get("profiles", [])
        if not isinstance(shown_on, list) or not all(
            isinstance(name, str) and name in settings_only for name in shown_on
        ):
            raise InputError(
                f"{path}: each [[references]].profiles must list profiles of this spec"
            )
    return TaskSpec(
        task=task,
        suite_version=suite_version,
        version=version,
        description=str(data.get("description", "")),
        profiles=settings_only,
        path=path,
        references=list(references),
        required_seeds=required_seeds,
        suite_methods=suite_methods,
        tolerances={key: float(value) for key, value in tolerances.items()},
    )


def parse_overrides(pairs: tuple[str, ...] | list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split `--set key=value` pairs into workload settings and `hp.`-prefixed hyperparameters.

    Values are read as TOML (`5`, `1e-3`, `true`, `[1, 2]`, `"text"`); anything that is not valid
    TOML is taken as a plain string, so `--set dtype=bf16` works without quotes.
    """
    settings: dict[str, Any] = {}
    hyperparameters: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(f"--set expects key=value, got {pair!r}")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        if key.startswith(HYPERPARAMETER_PREFIX):
            hyperparameters[key[len(HYPERPARAMETER_PREFIX) :]] = value
        else:
            settings[key] = value
    return settings, hyperparameters


def resolve_config(
    task_cls: type, spec: TaskSpec, profile: str, overrides: dict[str, Any] | None = None
) -> ResolvedConfig:
    """Build the task's typed config for `profile` with `overrides` applied."""
    if profile not in spec.profiles:
        known = ", ".join(sorted(spec.profiles))
        raise InputError(f"task {spec.task!r} has no profile {profile!r} (profiles: {known})")
    raw = dict(spec.profiles[profile])
    for key, value in (overrides or {}).items():
        raw[key] = value
    config_type = task_cls.config_type
    hints = typing.get_type_hints(config_type)
    fields = {f.name: f for f in dataclasses.fields(config_type)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise InputError(
            f"task {spec.task!r} has no setting {unknown[0]!r} (settings: {', '.join(fields)})"
        )
    values: dict[str, Any] = {}
    for name in fields:
        if name not in raw:
            continue
        where = f"{spec.task}.{profile}.{name}"
        values[name] = _coerce(raw[name], hints[name], where)
        _check_bounds(values[name], fields[name].metadata.get("bounds"), where)
    try:
        config = config_type(**values)
    except TypeError as exc:
        raise InputError(f"profile {profile!r} of task {spec.task!r}: {exc}") from exc
    settings = dataclasses.asdict(config)
    identity = {
        "task": spec.task,
        "suite_version": spec.suite_version,
        "spec_version": spec.version,
        "profile": profile,
        # A field marked metadata={"identity": False} (e.g. a file's path, when its content
        # hash is another field) is recorded but does not make runs incomparable.
        "settings": {k: v for k, v in settings.items() if fields[k].metadata.get("identity", True)},
    }
    return ResolvedConfig(profile, config, settings, sha256_hex(canonical_json(identity)))


def _check_bounds(value: Any, declared: tuple[Any, Any] | None, where: str) -> None:
    """A setting the store can hold (finite, 64-bit) and within its declared `bounds`
    (`tasks.base.bounds`), so `--set min_repeat_s=1e999` fails here, not inside the run."""
    from harness.store.limits import check_json

    try:
        check_json(where, value)
    except InputError as exc:
        raise InputError(f"setting {exc}") from None
    if declared is None:
        return
    low, high = declared
    for item in value if isinstance(value, list | tuple) else [value]:
        if not isinstance(item, int | float) or isinstance(item, bool):
            continue
        if (low is not None and item < low) or (high is not None and item > high):
            raise InputError(
                f"setting {where} = {item!r} is outside its bounds"
                f" {'-inf' if low is None else low} .. {'inf' if high is None else high}"
            )


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check `value` against a type hint; ints become floats where a float is declared."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except InputError:
                continue
        raise InputError(f"{where}: {value!r} is not a {hint}")
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise InputError(f"{where}: expected a list, got {value!r}")
        item_hint = args[0] if args else Any
        items = [_coerce(item, item_hint, where) for item in value]
        return tuple(items) if origin is tuple else items
    if hint is Any:
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, bool):
        raise InputError(f"{where}: expected int, got {value!r}")
    if isinstance(hint, type) and not isinstance(value, hint):
        raise InputError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value
