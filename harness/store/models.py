"""The tables: machines, runs, their scalar measurements, curve points and artifact metadata.

Schema changes go through an Alembic migration in `migrations/versions/`, never through
`create_all`: a test checks that the migrations and these models agree.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

RUN_STATUSES = ("running", "succeeded", "failed", "invalid")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator):
    """A timestamp that is always timezone-aware UTC in Python.

    PostgreSQL keeps the offset; SQLite stores none and hands back naive values. Normalising here
    means no reader has to remember which database it came from.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(timezone.utc)
        return value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is not None:
            value = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value
            value = value.astimezone(timezone.utc)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Machine(Base):
    """A hardware and software fingerprint; `id` is the hash of the whole fingerprint."""

    __tablename__ = "machines"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    hardware_key: Mapped[str] = mapped_column(String(64), index=True)
    software_key: Mapped[str] = mapped_column(String(64), index=True)
    hardware_label: Mapped[str] = mapped_column(String(500))
    fingerprint: Mapped[dict[str, Any]] = mapped_column(JSON)
    first_seen_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Run(Base):
    """One execution of (task, method, profile, seed) on a machine, with its provenance."""

    __tablename__ = "runs"
    __table_args__ = (
        CheckConstraint(f"status IN {RUN_STATUSES!r}", name="status"),
        Index(
            "ix_runs_comparability",
            "task",
            "task_spec_hash",
            "profile",
            "method_hash",
            "hardware_key",
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    task: Mapped[str] = mapped_column(String(64))
    suite_version: Mapped[str] = mapped_column(String(16))
    spec_version: Mapped[int] = mapped_column(Integer)
    task_spec_hash: Mapped[str] = mapped_column(String(64))
    profile: Mapped[str] = mapped_column(String(64))
    method_name: Mapped[str] = mapped_column(String(200))
    method_hash: Mapped[str] = mapped_column(String(64))
    method_description: Mapped[str] = mapped_column(Text, default="")
    is_reference_method: Mapped[bool] = mapped_column(Boolean, default=False)
    seed: Mapped[int] = mapped_column(Integer)
    device: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), index=True)
    error: Mapped[str | None] = mapped_column(Text)
    gate_passed: Mapped[bool | None] = mapped_column(Boolean)
    gate_reason: Mapped[str] = mapped_column(Text, default="")
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    hyperparameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    provenance: Mapped[dict[str, Any]] = mapped_column(JSON)
    machine_id: Mapped[str] = mapped_column(ForeignKey("machines.id"), index=True)
    hardware_key: Mapped[str] = mapped_column(String(64))
    software_key: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    heartbeat_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    """Last sign of life of a `running` run (see runner.Heartbeat); None before revision 0003."""
    wall_s: Mapped[float | None] = mapped_column(Float)
    timed_s: Mapped[float | None] = mapped_column(Float)

    machine: Mapped[Machine] = relationship()
    measurements: Mapped[list[Measurement]] = relationship(
        back_populates="run", cascade="all, delete-orphan", order_by="Measurement.id"
    )
    curve_points: Mapped[list[CurvePoint]] = relationship(
        back_populates="run", cascade="all, delete-orphan", order_by="CurvePoint.id"
    )
    artifacts: Mapped[list[Artifact]] = relationship(
        back_populates="run", cascade="all, delete-orphan", order_by="Artifact.id"
    )


class Measurement(Base):
    """A named scalar of a run; `samples` keeps the raw repetitions behind a median."""

    __tablename__ = "measurements"
    __table_args__ = (UniqueConstraint("run_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    value: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(32))
    higher_is_better: Mapped[bool] = mapped_column(Boolean)
    samples: Mapped[list[float] | None] = mapped_column(JSON)

    run: Mapped[Run] = relationship(back_populates="measurements")


class CurvePoint(Base):
    """One point (x, value) of a curve metric, such as held-out loss against seconds."""

    __tablename__ = "curve_points"
    __table_args__ = (Index("ix_curve_points_run_metric", "run_id", "metric"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    metric: Mapped[str] = mapped_column(String(128))
    x: Mapped[float] = mapped_column(Float)
    x_unit: Mapped[str] = mapped_column(String(32))
    value: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(32))

    run: Mapped[Run] = relationship(back_populates="curve_points")


class Artifact(Base):
    """Metadata of a file a run produced (checkpoint, log, samples); the file lives elsewhere."""

    __tablename__ = "artifacts"
    __table_args__ = (UniqueConstraint("run_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    uri: Mapped[str] = mapped_column(Text)
    media_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))

    run: Mapped[Run] = relationship(back_populates="artifacts")
