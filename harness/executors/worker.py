"""A worker process: runs one work item against the shared store (`python -m
harness.executors.worker`).

Started by the pool executor (one per device slot), inside a Slurm job, and once per rank by
torchrun. It reads the store URL from BUDGETBENCH_DB (kept off the command line, where `ps` would
show a password), runs the item through `executors.run_item` and writes the outcome as JSON to
`--outcome-file`. Exit codes as the CLI: 0 done (or skipped), 1 the run failed, 2 bad input,
130 interrupted (SIGTERM or SIGINT; the run is stored as failed first).

Under torchrun (WORLD_SIZE > 1) it initialises torch.distributed before the task runs (gloo on
the CPU; NCCL on CUDA with this rank's GPU, `cuda:LOCAL_RANK`), every rank gets the same seed,
and rank 0 alone writes the run and the outcome: other ranks run the task with a context that
records nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.errors import InputError
from harness.executors import SKIPPED, WorkItem, already_done, run_item
from harness.run.runner import Interrupted
from harness.store.records import RunRecord


@dataclass(frozen=True)
class Distributed:
    """This process's place in a torchrun launch."""

    rank: int
    local_rank: int
    world_size: int

    @classmethod
    def from_environment(cls) -> Distributed | None:
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size <= 1:
            return None
        return cls(int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"]), world_size)

    def setup(self, device: str) -> str:
        """Join the process group; returns this rank's device."""
        import torch
        import torch.distributed as dist

        if device == "cpu" or (device == "auto" and not torch.cuda.is_available()):
            dist.init_process_group("gloo")
            return "cpu"
        torch.cuda.set_device(self.local_rank)
        dist.init_process_group("nccl", device_id=torch.device(f"cuda:{self.local_rank}"))
        return f"cuda:{self.local_rank}"

    def share_decision(self, run_it: bool) -> bool:
        """Rank 0's decision (run or skip), on every rank."""
        import torch.distributed as dist

        decision = [run_it]
        dist.broadcast_object_list(decision, src=0)
        return bool(decision[0])

    def teardown(self) -> None:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.executors.worker", description=__doc__)
    parser.add_argument("item", help="the work item as JSON")
    parser.add_argument("--device", help="run on this device instead of the item's")
    parser.add_argument("--outcome-file", type=Path, help="write the outcome here as JSON")
    parser.add_argument("--resume", action="store_true", help="skip an item already done")
    args = parser.parse_args(argv)
    _install_signal_handlers()
    try:
        item = WorkItem.from_json(args.item)
        if args.device:
            item = item.on_device(args.device)
        outcome = _run(item, args.resume)
    except InputError as exc:
        print(f"budgetbench worker: error: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, Interrupted):
        print("budgetbench worker: interrupted", file=sys.stderr)
        return 130
    if outcome is None:  # a rank other than 0
        return 0
    if args.outcome_file is not None:
        write_outcome(args.outcome_file, outcome)
    return 0 if outcome.status in ("succeeded", SKIPPED) else 1


def _install_signal_handlers() -> None:
    def on_sigterm(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not cut the final write
        raise Interrupted()

    signal.signal(signal.SIGTERM, on_sigterm)


def _run(item: WorkItem, resume: bool) -> RunRecord | None:
    distributed = Distributed.from_environment()
    if distributed is None:
        return _run_and_store(item, resume, None)
    item = item.on_device(distributed.setup(item.device))
    try:
        if distributed.rank != 0:
            _run_unrecorded(item, distributed)
            return None
        return _run_and_store(item, resume, distributed)
    finally:
        distributed.teardown()


def _run_and_store(item: WorkItem, resume: bool, distributed: Distributed | None) -> RunRecord:
    from harness.run.machine import collect_fingerprint
    from harness.run.runner import save_machine
    from harness.store import open_store

    prepared = item.prepare()
    store = open_store(os.environ.get("BUDGETBENCH_DB"))
    try:
        machine_id = save_machine(store, collect_fingerprint())
        if distributed is not None:
            done = already_done(store, item, prepared, machine_id, resume=resume)
            if not distributed.share_decision(done is None):
                assert done is not None
                return done
        return run_item(store, item, prepared, machine_id, resume=resume)
    finally:
        store.dispose()


def _run_unrecorded(item: WorkItem, distributed: Distributed) -> None:
    """A rank other than 0: the same task, seed and settings, nothing stored."""
    from harness.run.recorder import RunRecorder
    from harness.run.runner import seed_everything

    prepared = item.prepare()
    if not distributed.share_decision(False):
        return
    seed_everything(item.seed)
    prepared.task.run(RunRecorder(None, "", prepared, item.seed, None), prepared.method)


def write_outcome(path: Path, outcome: RunRecord) -> None:
    """Write atomically: a reader sees the whole outcome or no file."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(outcome.outcome_json()))
    partial.replace(path)


if __name__ == "__main__":
    sys.exit(main())
