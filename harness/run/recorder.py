"""The recorder: the `RunContext` a task sees while it runs, which checks every measurement
against the task's metrics and hands it to the store as it comes.

Scalars and artifacts are stored as they are recorded, curve points at most every
`FLUSH_INTERVAL_S`; whatever is still pending goes in with the run's final status (see
`harness.run.runner.execute_run`), so a crash keeps what was recorded so far.
"""

from __future__ import annotations

import hashlib
import math
import mimetypes
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from harness.paths import cache_dir
from harness.store import Store
from harness.store.records import ArtifactRecord, CurvePointRecord, MeasurementRecord, RunResult
from harness.store.runs import append_results
from tasks.base import BudgetClock

if TYPE_CHECKING:
    from harness.run.runner import PreparedRun

T = TypeVar("T")
FLUSH_INTERVAL_S = 2.0

Tracker = Callable[[Iterable[Any], str, int | None], Iterable[Any]]
"""Shows a progress bar over an iterable: (items, description, total) -> items."""


class RunRecorder:
    """The `RunContext` a task sees: records measurements and flushes them to the store.

    With `store=None` it checks and then drops everything (artifacts included): the context of a
    data-parallel rank other than 0, whose run is stored by rank 0 alone.
    """

    def __init__(
        self,
        store: Store | None,
        run_id: str,
        prepared: PreparedRun,
        seed: int,
        tracker: Tracker | None,
    ) -> None:
        self.config = prepared.resolved.config
        self.seed = seed
        self.device = prepared.device
        self.clock = BudgetClock(getattr(self.config, "budget_s", None))
        self.data_dir = prepared.data_dir
        self.cache_dir = cache_dir()
        self.artifact_dir = (
            store.artifact_root / run_id
            if store is not None  # a rank other than 0: its files are not the run's; a scratch dir
            else Path(tempfile.gettempdir()) / f"budgetbench-rank-{os.getpid()}"
        )
        self.notes: dict[str, Any] = {}
        self._store = store
        self._run_id = run_id
        self._task = prepared.task
        self._tracker = tracker
        self._pending: list[RunResult] = []
        self._artifact_names: set[str] = set()
        self.scalars: dict[str, tuple[float, str]] = {}
        self._last_flush = time.monotonic()

    def record(self, name: str, value: float, *, samples: list[float] | None = None) -> None:
        metric = self._task.metric(name)
        if metric.is_curve:
            raise ValueError(f"{name!r} is a curve: use record_point")
        if name in self.scalars:
            raise ValueError(f"measurement {name!r} recorded twice in one run")
        value = _finite(name, value)
        clean_samples = tuple(_finite(name, s) for s in samples) if samples is not None else None
        self.scalars[name] = (value, metric.unit)
        self._pending.append(
            MeasurementRecord(name, value, metric.unit, metric.higher_is_better, clean_samples)
        )
        self._flush()

    def record_point(self, name: str, x: float, value: float) -> None:
        metric = self._task.metric(name)
        if not metric.is_curve:
            raise ValueError(f"{name!r} is a scalar metric: use record")
        assert metric.x_unit is not None
        self._pending.append(
            CurvePointRecord(
                metric=name,
                x=_finite(name, x),
                x_unit=metric.x_unit,
                value=_finite(name, value),
                unit=metric.unit,
            )
        )
        self._maybe_flush()

    def note(self, key: str, value: Any) -> None:
        self.notes[key] = value

    def save_artifact(self, name: str, path: Path, media_type: str | None = None) -> None:
        if name in self._artifact_names:
            raise ValueError(f"artifact {name!r} saved twice in one run")
        path = Path(path).resolve()
        if not path.is_file():
            raise ValueError(f"artifact {name!r}: {path} is not a file")
        guessed, _ = mimetypes.guess_type(path.name)
        self._artifact_names.add(name)
        self._pending.append(
            ArtifactRecord(
                name=name,
                uri=path.as_uri(),
                media_type=media_type or guessed or "application/octet-stream",
                size_bytes=path.stat().st_size,
                sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
            )
        )
        self._flush()

    def track(self, items: Iterable[T], description: str, total: int | None = None) -> Iterable[T]:
        if self._tracker is None:
            return items
        return self._tracker(items, description, total)

    def take_pending(self) -> list[RunResult]:
        """What was recorded but not stored yet; the caller stores it (see `execute_run`)."""
        pending, self._pending = self._pending, []
        self._last_flush = time.monotonic()
        return pending

    def _maybe_flush(self) -> None:
        if time.monotonic() - self._last_flush >= FLUSH_INTERVAL_S:
            self._flush()

    def _flush(self) -> None:
        pending = self.take_pending()
        if self._store is not None:
            append_results(self._store, self._run_id, pending)


def _finite(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"measurement {name!r} is not finite ({value})")
    return value
