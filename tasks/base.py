"""The contracts between the harness, a task and a submitted method.

A **task** is a frozen workload: it owns data, model, evaluation, metrics and the clock. A
**method** is what a user submits: a Python module that implements the task's *method interface*
(a few functions, listed in `Task.method_interface`) plus a `HYPERPARAMETERS` dict. The harness
loads and validates the method before anything runs, hands the task a `RunContext`, and stores
everything the task records through it.

What a task may rely on:
- `run()` is called once per seed, with the seed already applied to `random`, numpy and torch.
- Everything recorded through the context is stored, even if `run()` raises afterwards.

What a method may rely on: only the functions of the interface are called, with the arguments the
interface documents; evaluation never calls method code.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import inspect
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar, Protocol, TypeVar

# The plot style's one home is tasks.common.plots; it is named here for the harness (the site's
# plots), which imports no task module but this one.
from tasks.common.plots import LINE_STYLES, STYLE, plain_tick_labels  # noqa: F401

T = TypeVar("T")


def bounds(minimum: float | None = None, maximum: float | None = None) -> dict[str, Any]:
    """Field metadata giving a numeric setting its range, checked before any run starts:
    `matmul_size: int = dataclasses.field(metadata=bounds(1, 65536))` (both ends inclusive;
    a list setting's every item). Every float setting must also be finite, bounds or not."""
    return {"bounds": (minimum, maximum)}


@dataclass(frozen=True)
class Metric:
    """A quantity a task reports. `x_unit` is set for curves (value against step or seconds)."""

    name: str
    unit: str
    higher_is_better: bool
    description: str
    x_unit: str | None = None

    @property
    def is_curve(self) -> bool:
        return self.x_unit is not None


@dataclass(frozen=True)
class MethodFunction:
    """One function of a task's method interface: its name, parameter names and contract."""

    name: str
    parameters: tuple[str, ...]
    doc: str

    @property
    def signature(self) -> str:
        return f"{self.name}({', '.join(self.parameters)})"


@dataclass(frozen=True)
class GateResult:
    """Whether a run met the task's quality gate, and why not if it did not."""

    passed: bool
    reason: str = ""


@dataclass(frozen=True)
class Method:
    """A loaded, validated method: its code, hyperparameters and identity.

    `method_hash` covers the source files and the effective hyperparameters, so a changed method
    never shares history with the old one.
    """

    name: str
    module: ModuleType
    hyperparameters: Mapping[str, Any]
    description: str
    source_files: tuple[Path, ...]
    method_hash: str
    is_reference: bool = False


@dataclass(frozen=True)
class Consistency:
    """Relations between a run's numbers that hold for every honest run of a task, so
    `budgetbench verify` can catch an edited number even when its checksums were recomputed."""

    final_is_last_point: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Scalar metric -> the curve whose last point it equals (a final loss and its curve)."""
    values_are_sample_medians: bool = False
    """Every scalar recorded with `samples` is the median of those samples."""
    timed_seconds_metric: str | None = None
    """A scalar equal to the run's timed seconds: nothing after it (evaluation) was clocked."""


class BudgetClock:
    """Counts the seconds a run spends in *timed* regions, so every method is clocked alike.

    A task wraps the work a budget pays for (training steps, compilation) in `timed()`; anything
    outside is free (data preparation, evaluation). Inside a timed region, `untimed()` pauses the
    clock, e.g. for a periodic evaluation in the middle of training. Timed regions do not nest,
    which keeps the rule auditable.
    """

    def __init__(self, budget_s: float | None = None) -> None:
        self.budget_s = budget_s
        self._timed_s = 0.0
        self._started: float | None = None

    @property
    def timed_s(self) -> float:
        """Timed seconds so far, including the region in progress."""
        running = time.perf_counter() - self._started if self._started is not None else 0.0
        return self._timed_s + running

    def add_timed(self, seconds: float) -> None:
        """Count seconds timed elsewhere: a run done in a confined child process (see
        `harness.run.confine`), whose clock the harness takes over."""
        self._timed_s += seconds

    def remaining_s(self) -> float:
        """Timed seconds left in the budget (infinite without a budget)."""
        if self.budget_s is None:
            return float("inf")
        return max(0.0, self.budget_s - self.timed_s)

    @property
    def exhausted(self) -> bool:
        return self.remaining_s() <= 0.0

    @contextlib.contextmanager
    def timed(self) -> Iterator[None]:
        if self._started is not None:
            raise RuntimeError("BudgetClock.timed() regions do not nest")
        self._started = time.perf_counter()
        try:
            yield
        finally:
            self._stop()

    @contextlib.contextmanager
    def untimed(self) -> Iterator[None]:
        """Pause the running timed region (a no-op outside one)."""
        if self._started is None:
            yield
            return
        self._stop()
        try:
            yield
        finally:
            self._started = time.perf_counter()

    def _stop(self) -> None:
        if self._started is not None:
            self._timed_s += time.perf_counter() - self._started
            self._started = None


class RunContext(Protocol):
    """What the harness gives a task for one run (one seed)."""

    config: Any
    """The resolved profile settings, an instance of the task's `config_type`."""
    seed: int
    device: str
    """A torch device string: "cpu", "cuda" or "cuda:N"."""
    clock: BudgetClock
    data_dir: Path | None
    """A local mirror of hub datasets (--data-dir / BUDGETBENCH_DATA_DIR), or None for the hub."""
    cache_dir: Path
    """Where the task may cache prepared data, keyed by what it was made from."""

    artifact_dir: Path
    """Where this run may write files worth keeping (plots, samples); created on first use by
    the task (`mkdir(parents=True, exist_ok=True)`), unique to the run, never cleaned up."""

    def note(self, key: str, value: Any) -> None:
        """Store a fact about the run's inputs in its provenance (a corpus hash, a data source)."""

    def save_artifact(self, name: str, path: Path, media_type: str | None = None) -> None:
        """Record a file the run wrote (normally under `artifact_dir`) as a named run artifact.

        The store keeps its path, size, sha256 and media type (guessed from the suffix when not
        given); `budgetbench show` lists it. Names are unique within a run.
        """

    def record(self, name: str, value: float, *, samples: list[float] | None = None) -> None:
        """Store a scalar measurement of a declared metric (`samples`: the raw repetitions)."""

    def record_point(self, name: str, x: float, value: float) -> None:
        """Store one point of a declared curve metric."""

    def track(self, items: Iterable[T], description: str, total: int | None = None) -> Iterable[T]:
        """Iterate with a progress bar the user can see."""


class Task(abc.ABC):
    """A standardized workload. Subclasses fill in the class attributes and `run`.

    The task's profiles live in `suite/<version>/<task>.toml`; each profile's table must match
    `config_type` (a dataclass), so a typo in a spec or a `--set` fails before anything runs.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    metrics: ClassVar[tuple[Metric, ...]]
    method_interface: ClassVar[tuple[MethodFunction, ...]]
    config_type: ClassVar[type]
    reference_methods: ClassVar[tuple[str, ...]]
    supports_cuda: ClassVar[bool] = True
    supports_data_parallel: ClassVar[bool] = False
    """Whether one run may span several processes (`--nproc-per-node N`, launched by torchrun).

    When True and N > 1, `run()` is called in every process with torch.distributed already
    initialised (gloo on the CPU, NCCL on CUDA), `ctx.device` set to that process's own device
    (`cuda:LOCAL_RANK`) and the same seed everywhere; the task splits the work itself (e.g. DDP).
    Only rank 0's records are stored; the other ranks' contexts accept and drop them.
    """
    headline_metrics: ClassVar[tuple[str, ...]] = ()
    """The metrics a leaderboard shows as columns, first one ranks (default: all, in order)."""
    consistency: ClassVar[Consistency] = Consistency()
    """What `budgetbench verify` checks between a run's numbers (default: nothing)."""

    @classmethod
    def methods_dir(cls) -> Path:
        """Where the reference methods live: `tasks/<task>/methods/`."""
        return Path(inspect.getfile(cls)).resolve().parent / "methods"

    @classmethod
    def metric(cls, name: str) -> Metric:
        for metric in cls.metrics:
            if metric.name == name:
                return metric
        raise KeyError(f"task {cls.name!r} declares no metric {name!r}")

    @classmethod
    def default_method(cls, config: Any) -> str:
        """The method a run uses when none is given (default: the first reference method)."""
        return cls.reference_methods[0]

    def check_method(self, method: Method, config: Any) -> None:
        """Reject a method that breaks the task's rules before anything runs (raise ValueError
        with a one-line reason). The default accepts every method that fits the interface."""
        return None

    def check_inputs(self, config: Any, data_dir: Path | None) -> None:
        """Fail before anything runs when data the profile needs is missing from `data_dir`
        (raise ValueError with a one-line reason). The default needs nothing."""
        return None

    def quality_gate(self, scalars: Mapping[str, float], config: Any) -> GateResult:
        """Judge a finished run from its scalar measurements; the default accepts every run."""
        return GateResult(passed=True)

    def report_lines(self, scalars: Mapping[str, float]) -> list[str]:
        """Extra lines `show` prints after a run's measurements, laid out as the task's anchor
        prints them (quant: llama.cpp's KL summary). The default prints nothing."""
        return []

    @abc.abstractmethod
    def run(self, ctx: RunContext, method: Method) -> None:
        """Execute the workload once with `method`, recording measurements through `ctx`."""


class InputError(Exception):
    """Bad usage or bad input that the user can fix (a bad method file, a missing dataset, a
    malformed bundle); the message is one line that names the culprit. The CLI prints it and
    exits 2. Tasks raise it from here; `harness.errors.InputError` is this same class."""
