"""What the store hands out: a run as one frozen `RunRecord`, never an ORM row.

Everything outside `harness.store` sees runs, machines and measurements as these records: the
runner's outcome, the executors' results, the boards, the site, bundles and the CLI. The ORM
rows stay inside the store, so a reader cannot lazy-load a relation after its session closed or
write to a row by accident, and a record from a bundle reads the same as one from the database.

A record keeps the store's field names (`id`, `method_name`, `measurements` ...). It has two
JSON forms, each in one place: `to_dict` is the bundle form (`harness.submit.bundles` adds the
checksum around it), and `outcome_json` is the short form of a run's outcome that `run --json`
prints, a worker process hands back and a Slurm job returns.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timezone
from typing import Any


def utc_iso(moment: datetime) -> str:
    """An aware time (the store always returns UTC) in the bundle's ISO form."""
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def parse_utc(text: str) -> datetime:
    """The inverse of `utc_iso`: an aware UTC time."""
    return datetime.fromisoformat(text).astimezone(timezone.utc)


def shallow_fields(record: Any) -> dict[str, Any]:
    """A record's fields by name, values as they are (unlike `asdict`, no deep copy)."""
    return {f.name: getattr(record, f.name) for f in fields(record)}


@dataclass(frozen=True)
class MachineRecord:
    """A hardware and software fingerprint; `id` is the hash of the whole fingerprint."""

    id: str
    hardware_key: str
    software_key: str
    hardware_label: str
    fingerprint: dict[str, Any]
    first_seen_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """The bundle form."""
        return {**shallow_fields(self), "first_seen_at": utc_iso(self.first_seen_at)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MachineRecord:
        """A machine from its bundle form (validated by the caller)."""
        return cls(**{**data, "first_seen_at": parse_utc(data["first_seen_at"])})


@dataclass(frozen=True)
class MeasurementRecord:
    """A named scalar of a run; `samples` keeps the raw repetitions behind a median."""

    name: str
    value: float
    unit: str
    higher_is_better: bool
    samples: tuple[float, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        samples = list(self.samples) if self.samples is not None else None
        return {**shallow_fields(self), "samples": samples}


@dataclass(frozen=True)
class CurvePointRecord:
    """One point (x, value) of a curve metric, such as held-out loss against seconds."""

    metric: str
    x: float
    x_unit: str
    value: float
    unit: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ArtifactRecord:
    """Metadata of a file a run produced; the file lives at `uri` (or inside a bundle)."""

    name: str
    uri: str
    media_type: str
    size_bytes: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


RunResult = MeasurementRecord | CurvePointRecord | ArtifactRecord
"""What a run records while it runs (see `harness.run.recorder`)."""

_RUN_FIELDS = (
    "id", "task", "suite_version", "spec_version", "task_spec_hash", "profile", "method_name",
    "method_hash", "method_description", "is_reference_method", "seed", "device", "status",
    "error", "gate_passed", "gate_reason", "settings", "hyperparameters", "provenance",
    "machine_id", "hardware_key", "software_key", "wall_s", "timed_s",
)  # fmt: skip
"""The run fields of the bundle form besides its times and children (bundle format 1)."""


@dataclass(frozen=True)
class RunRecord:
    """One execution of (task, method, profile, seed) on a machine, as it was stored.

    `machine` is set when the record came from the store (or from a bundle with its machines);
    `heartbeat_at` only from the store. An executor's outcome for an item it skipped is the
    stored run with status `skipped` (see `harness.executors`).
    """

    id: str
    task: str
    suite_version: str
    spec_version: int
    task_spec_hash: str
    profile: str
    method_name: str
    method_hash: str
    method_description: str
    is_reference_method: bool
    seed: int
    device: str
    status: str
    error: str | None
    gate_passed: bool | None
    gate_reason: str
    settings: dict[str, Any]
    hyperparameters: dict[str, Any]
    provenance: dict[str, Any]
    machine_id: str
    hardware_key: str
    software_key: str
    started_at: datetime
    finished_at: datetime | None = None
    heartbeat_at: datetime | None = None
    wall_s: float | None = None
    timed_s: float | None = None
    measurements: tuple[MeasurementRecord, ...] = ()
    curve_points: tuple[CurvePointRecord, ...] = ()
    artifacts: tuple[ArtifactRecord, ...] = ()
    machine: MachineRecord | None = field(default=None, compare=False)

    @property
    def run_id(self) -> str:
        """The run's id (the name an outcome's readers know it by)."""
        return self.id

    @property
    def scalars(self) -> dict[str, tuple[float, str]]:
        """Each scalar measurement as `name: (value, unit)`, in the order recorded."""
        return {m.name: (m.value, m.unit) for m in self.measurements}

    def scalar_values(self) -> dict[str, float]:
        """Each scalar measurement as `name: value`, in the order recorded."""
        return {m.name: m.value for m in self.measurements}

    def with_status(self, status: str) -> RunRecord:
        """The same run with another status (an executor's `skipped`)."""
        return replace(self, status=status)

    def to_dict(self) -> dict[str, Any]:
        """The bundle form of the run (its machine travels beside it, by `machine_id`)."""
        data: dict[str, Any] = {name: getattr(self, name) for name in _RUN_FIELDS}
        data["started_at"] = utc_iso(self.started_at)
        data["finished_at"] = utc_iso(self.finished_at) if self.finished_at else None
        data["measurements"] = [m.to_dict() for m in self.measurements]
        data["curve_points"] = [p.to_dict() for p in self.curve_points]
        data["artifacts"] = [a.to_dict() for a in self.artifacts]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], machine: MachineRecord | None = None) -> RunRecord:
        """A run from its bundle form (validated by the caller, see `validate_bundle`)."""
        return cls(
            **{name: data[name] for name in _RUN_FIELDS},
            started_at=parse_utc(data["started_at"]),
            finished_at=parse_utc(data["finished_at"]) if data["finished_at"] else None,
            measurements=tuple(
                MeasurementRecord(
                    **{**m, "samples": tuple(m["samples"]) if m["samples"] is not None else None}
                )
                for m in data["measurements"]
            ),
            curve_points=tuple(CurvePointRecord(**p) for p in data["curve_points"]),
            artifacts=tuple(  # a published artifact also encloses its bytes (`content`)
                ArtifactRecord(**{f.name: a[f.name] for f in fields(ArtifactRecord)})
                for a in data["artifacts"]
            ),
            machine=machine,
        )

    def outcome_json(self) -> dict[str, Any]:
        """The one JSON form of a run's outcome: what `run --json` prints, what a worker process
        hands back to its pool and what a Slurm job returns. Measurements by name, no units."""
        return {
            "run_id": self.id,
            "task": self.task,
            "method": self.method_name,
            "profile": self.profile,
            "seed": self.seed,
            "status": self.status,
            "error": self.error,
            "gate_passed": self.gate_passed,
            "gate_reason": self.gate_reason,
            "wall_s": self.wall_s,
            "measurements": self.scalar_values(),
        }


RUN_COLUMNS = tuple(
    f.name
    for f in fields(RunRecord)
    if f.name not in ("measurements", "curve_points", "artifacts", "machine")
)
"""A run's own fields, without its children: the columns of its row in the store."""
