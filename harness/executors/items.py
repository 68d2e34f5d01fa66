"""Work items: one run to do, in a form any process can rebuild it from (JSON), and the run ids
its attempts get (the same in every process, so a retried item finds its earlier attempts)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from harness.run.runner import PreparedRun, prepare
from harness.spec import canonical_json, sha256_hex

MAX_ATTEMPTS = 64


@dataclass(frozen=True)
class WorkItem:
    """One run to do, in a form any process can rebuild it from (JSON)."""

    task: str
    method: str | None
    profile: str
    seed: int
    overrides: tuple[str, ...] = ()
    suite_version: str | None = None
    data_dir: str | None = None
    device: str = "auto"
    sweep_id: str = ""

    def to_json(self) -> str:
        return canonical_json(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> WorkItem:
        data = json.loads(text)
        return cls(**{**data, "overrides": tuple(data.get("overrides", ()))})

    def run_id(self, attempt: int) -> str:
        """The id this item's run gets on `attempt` (0, 1, ...): the same in every process."""
        identity = {**asdict(self), "device": None, "attempt": attempt}
        return sha256_hex(canonical_json(identity))[:32]

    def candidate_run_ids(self) -> list[str]:
        return [self.run_id(attempt) for attempt in range(MAX_ATTEMPTS)]

    def on_device(self, device: str) -> WorkItem:
        return replace(self, device=device)

    def prepare(self) -> PreparedRun:
        return prepare(
            self.task,
            self.method,
            self.profile,
            self.device,
            self.overrides,
            self.suite_version,
            None if self.data_dir is None else Path(self.data_dir),
        )
