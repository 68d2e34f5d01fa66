"""The contracts between the harness, a task and a submitted method.

A **task** is a frozen workload: it owns data, model, evaluation, metrics and the clock. A
**method** is what a user submits: a Python module that implements the task's *method interface*
(typed stub functions, module constants and reserved hyperparameters, declared in the task's
`interface.py`; `budgetbench tasks TASK` prints it) plus a `HYPERPARAMETERS` dict. The harness
loads the method and checks it against that interface before anything runs, hands the task a
`RunContext`, and stores everything the task records through it.

What a task may rely on:
- `run()` is called once per seed, with the seed already applied to `random`, numpy and torch.
- Everything recorded through the context is stored, even if `run()` raises afterwards.

What a method may rely on: only the functions of the interface are called, with the arguments the
interface documents, the last of them always `run` (a `MethodRun`: hyperparameters, seed, device,
budget and a `state` dict of its own), so a method needs no module globals; evaluation never calls
method code.
"""

from __future__ import annotations

import abc
import ast
import contextlib
import copy
import dataclasses
import functools
import importlib
import inspect
import math
import time
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType, ModuleType, UnionType
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
    constants: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """Every module constant the task's interface declares: the method's value or the default."""

    def new_run(self, seed: int, device: str, budget_s: float | None = None) -> MethodRun:
        """The `run` argument for one run (or one trial) of this method: its own copy of the
        hyperparameters, read-only, and an empty `state`."""
        return MethodRun(
            hyperparameters=MappingProxyType(copy.deepcopy(dict(self.hyperparameters))),
            seed=seed,
            device=device,
            budget_s=budget_s,
        )


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


# Method interfaces: what a method gets, may define and may set, read from the task's stub module.


@dataclass(frozen=True)
class MethodRun:
    """The last argument, `run`, of every function of a method: the run (or trial) it serves.

    Everything a method needs between its functions lives here or in the other arguments, so a
    method keeps no module globals: `hyperparameters` are the effective ones (the file's
    `HYPERPARAMETERS` with the `--set hp.NAME=VALUE` overrides applied; read-only, the method's
    own copy), and `state` is a dict the method may fill and read back in its later calls of the
    same run. A fresh `MethodRun` is made for every run, so nothing carries over between seeds.
    """

    hyperparameters: Mapping[str, Any]
    seed: int
    device: str
    """A torch device string: "cpu", "cuda" or "cuda:N"."""
    budget_s: float | None = None
    """The run's budget in timed seconds, where the task has one (cramming); else None."""
    state: dict[str, Any] = dataclasses.field(default_factory=dict)


def optional(function: Callable[..., Any]) -> Callable[..., Any]:
    """Marks a stub of an interface module as optional: a method may leave it out."""
    function.__budgetbench_optional__ = True  # type: ignore[attr-defined]
    return function


@dataclass(frozen=True)
class Reserved:
    """A hyperparameter key whose meaning the task fixes: the task reads it itself (cramming's
    `mask_rate`), so the effective value is checked before any run starts.

    `types` lists the accepted types (a float accepts an int, never a bool); `bounds` are
    inclusive and apply to a number or to each item of a list of `length` numbers; `positive`
    excludes 0; `forbidden` keys must not be set at all (the task owns that choice).
    """

    doc: str
    types: tuple[type, ...] = (float,)
    bounds: tuple[float | None, float | None] = (None, None)
    positive: bool = False
    choices: tuple[Any, ...] = ()
    length: int | None = None
    required: bool = False
    default: Any = None
    forbidden: bool = False

    def describe(self) -> str:
        """What the value must be, as the end of "must be ..."."""
        if self.forbidden:
            return "left out (the task sets it)"
        if self.choices:
            quoted = [repr(c) for c in self.choices]
            return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + f" or {quoted[-1]}"
        low, high = self.bounds
        positive = "positive " if self.positive else ""
        if self.length is not None:
            text = f"a list of {self.length} {positive}numbers"
            if low is not None and high is not None:
                text += f", each between {low:g} and {high:g}"
        elif low is not None and high is not None:
            text = f"between {low:g} and {high:g}"
        else:
            names = {
                float: f"a {positive}number",
                int: f"a {positive}integer",
                bool: "True or False",
            }
            kinds = [t for t in self.types if t is not type(None)]
            text = " or ".join(names.get(t, f"a {_type_name(t)}") for t in kinds)
        return text + (" or None" if type(None) in self.types else "")

    def problem(self, present: bool, value: Any) -> str | None:
        """Why the value breaks the rule (None when it does not): the end of a sentence that
        starts with the key."""
        if self.forbidden:
            return "must not be set: the task sets it" if present else None
        if not present:
            return f"is required: {self.doc}" if self.required else None
        broken = f"must be {self.describe()}, got {value!r}"
        if self.choices:
            return None if value in self.choices else broken
        if value is None:
            return None if type(None) in self.types else broken
        if self.length is not None:
            if not isinstance(value, list | tuple) or len(value) != self.length:
                return broken
            items, kinds = list(value), (float,)
        else:
            items, kinds = [value], self.types
        for item in items:
            if not any(_is_instance(item, kind) for kind in kinds):
                return broken
            if _is_instance(item, float) and not self._within_bounds(float(item)):
                return broken
        return None

    def _within_bounds(self, number: float) -> bool:
        low, high = self.bounds
        return (
            math.isfinite(number)
            and (low is None or number >= low)
            and (high is None or number <= high)
            and (not self.positive or number > 0)
        )


@dataclass(frozen=True)
class InterfaceFunction:
    """One function of a method interface, read from its typed stub."""

    name: str
    parameters: tuple[str, ...]
    typed_signature: str
    """The stub's signature with its type hints as written: `f(x: int, run: MethodRun) -> float`."""
    doc: str
    optional: bool

    @property
    def signature(self) -> str:
        return f"{self.name}({', '.join(self.parameters)})"


@dataclass(frozen=True)
class InterfaceConstant:
    """A module constant a method may (or, without a default, must) define."""

    name: str
    annotation: str
    type: Any
    required: bool
    default: Any
    doc: str


COMMON_CONSTANTS = (
    InterfaceConstant(
        "NAME", "str", str, False, None,
        "The method's name on leaderboards, matched across tasks for the suite score"
        " (default: the file name with '-' for '_').",
    ),
    InterfaceConstant(
        "DESCRIPTION", "str", str, False, None,
        "One line on what the method does (default: the module docstring's first paragraph).",
    ),
    InterfaceConstant(
        "HYPERPARAMETERS", "dict[str, Any]", dict, False, None,
        "Every number or choice the method's behaviour depends on, JSON-serializable and part of"
        " its hash; `--set hp.NAME=VALUE` overrides an existing key. Functions read the effective"
        " values from `run.hyperparameters`, never from this dict (default: none).",
    ),
)  # fmt: skip


@dataclass(frozen=True)
class MethodInterface:
    """A task's method interface, read from its stub module (`tasks/<task>/interface.py`).

    The stub module holds typed stub functions (one per function a method implements; `@optional`
    marks those it may leave out), annotated module constants (an annotation without a value is
    required, one with a value is optional and the value is its default; the string after it is
    its documentation) and `RESERVED_HYPERPARAMETERS`, a dict of `Reserved` rules.
    """

    module: str
    doc: str
    functions: tuple[InterfaceFunction, ...]
    constants: tuple[InterfaceConstant, ...]
    reserved: Mapping[str, Reserved]

    def __iter__(self) -> Iterator[InterfaceFunction]:
        return iter(self.functions)

    @classmethod
    def from_module(cls, module: ModuleType) -> MethodInterface:
        functions = tuple(
            _interface_function(name, value)
            for name, value in vars(module).items()
            if inspect.isfunction(value) and value.__module__ == module.__name__
        )
        docs = _attribute_docs(module)
        hints = typing.get_type_hints(module)
        annotations = vars(module).get("__annotations__", {})
        own = tuple(
            InterfaceConstant(
                name=name,
                annotation=str(annotations[name]),
                type=hints[name],
                required=not hasattr(module, name),
                default=getattr(module, name, None),
                doc=docs.get(name, ""),
            )
            for name in annotations
        )
        names = {c.name for c in own}
        return cls(
            module=module.__name__,
            doc=inspect.getdoc(module) or "",
            functions=functions,
            constants=tuple(c for c in COMMON_CONSTANTS if c.name not in names) + own,
            reserved=dict(getattr(module, "RESERVED_HYPERPARAMETERS", {})),
        )


@functools.cache
def load_interface(module_name: str) -> MethodInterface:
    """The interface in `module_name`, read once per process."""
    return MethodInterface.from_module(importlib.import_module(module_name))


class _InterfaceOf:
    """`Task.method_interface`: the task's interface, read from its stub module on first use (so
    importing a task reads no stub)."""

    def __get__(self, instance: Any, owner: type) -> MethodInterface:
        name = getattr(owner, "interface_module", None)
        if name is None:  # `tasks.probe` -> `tasks.probe.interface`; `pkg.task` -> `pkg.interface`
            module = importlib.import_module(owner.__module__)
            package = module.__name__ if hasattr(module, "__path__") else module.__package__
            name = f"{package}.interface" if package else "interface"
        return load_interface(name)


def _interface_function(name: str, stub: Callable[..., Any]) -> InterfaceFunction:
    signature = inspect.signature(stub)
    shown = [
        f"{p.name}: {p.annotation}" if p.annotation is not inspect.Parameter.empty else p.name
        for p in signature.parameters.values()
    ]
    returns = signature.return_annotation
    typed = f"{name}({', '.join(shown)})" + (
        f" -> {returns}" if returns is not inspect.Signature.empty else ""
    )
    return InterfaceFunction(
        name=name,
        parameters=tuple(signature.parameters),
        typed_signature=typed,
        doc=inspect.getdoc(stub) or "",
        optional=bool(getattr(stub, "__budgetbench_optional__", False)),
    )


def _attribute_docs(module: ModuleType) -> dict[str, str]:
    """The string literal after each annotated module constant (the convention Sphinx reads)."""
    try:
        tree = ast.parse(inspect.getsource(module))
    except (OSError, TypeError):
        return {}
    docs = {}
    for node, following in zip(tree.body, tree.body[1:], strict=False):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[node.target.id] = inspect.cleandoc(following.value.value)
    return docs


def _type_name(kind: Any) -> str:
    return getattr(kind, "__name__", str(kind))


def _is_instance(value: Any, kind: Any) -> bool:
    """isinstance for a constant's declared type: `float` takes an int, no number takes a bool,
    and generics and unions (`dict[str, Any]`, `str | None`) are checked by their origin."""
    if kind is Any:
        return True
    origin = typing.get_origin(kind)
    if origin in (typing.Union, UnionType):
        return any(_is_instance(value, arg) for arg in typing.get_args(kind))
    if kind is None or kind is type(None):
        return value is None
    base = origin or kind
    if base is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if base is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if base is dict:
        base = Mapping
    return isinstance(value, base)


def check_constant(constant: InterfaceConstant, present: bool, value: Any) -> str | None:
    """Why a method's value of `constant` breaks the interface (None when it does not)."""
    if not present:
        return f"must define {constant.name}: {constant.annotation}" if constant.required else None
    if not _is_instance(value, constant.type):
        return f"{constant.name} must be {constant.annotation}, got {type(value).__name__}"
    return None


class Task(abc.ABC):
    """A standardized workload. Subclasses fill in the class attributes and `run`.

    The task's profiles live in `suite/<version>/<task>.toml`; each profile's table must match
    `config_type` (a dataclass), so a typo in a spec or a `--set` fails before anything runs.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    metrics: ClassVar[tuple[Metric, ...]]
    interface_module: ClassVar[str | None] = None
    """The module holding the method interface (default: `interface` in the task's package,
    `tasks/<task>/interface.py`)."""
    method_interface: ClassVar[MethodInterface] = _InterfaceOf()  # type: ignore[assignment]
    """The interface read from `interface_module`; iterating it gives its functions."""
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
