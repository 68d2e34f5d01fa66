"""One control group per sandbox slot, so memory, process and CPU limits cover all of a program's
processes (rlimits count each process apart: 1 parent + 3 children could use 4x the limit).

cgroup v2 is used where the machine has it (a unified hierarchy whose root offers the memory
and pids controllers), else cgroup v1 (one group per controller hierarchy), else nothing: the
caller falls back to rlimits alone and records that. Only root can create groups. A slot's
group is named after its uid, which is unique on the host while the sandbox holds it
(`sandbox._lease_uid`), so two sandboxes never share a group.

The harness creates the groups and opens their `cgroup.procs` files; the zygote inherits those
descriptors and each program's first process writes "0" (itself) into them before it forks the
program, so no path under /sys needs to be visible inside the sandbox.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")


@dataclass
class SlotGroup:
    """The group(s) of one slot: `version` is "v2", "v1" or "" (none could be made)."""

    version: str
    directories: list[Path] = field(default_factory=list)
    procs_fds: list[int] = field(default_factory=list)

    def close(self) -> None:
        """Close the descriptors and remove the groups, once the processes killed with the
        zygote have left them (a moment; a group still busy after a second is left behind
        and reused under the same name)."""
        for fd in self.procs_fds:
            os.close(fd)
        self.procs_fds.clear()
        deadline = time.monotonic() + 1.0
        for directory in self.directories:
            while True:
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.01)
        self.directories.clear()


def create(name: str, memory_bytes: int, processes: int, cpus: float = 1.0) -> SlotGroup:
    """A group `name` limited to `memory_bytes` (no swap), `processes` tasks and `cpus` cores."""
    if os.geteuid() != 0:
        return SlotGroup("")
    period = 100_000
    quota = int(cpus * period)
    if _v2_available():
        settings = {
            "memory.max": memory_bytes,
            "memory.swap.max": 0,
            "pids.max": processes,
            "cpu.max": f"{quota} {period}",
        }
        with contextlib.suppress(OSError):
            return _make("v2", [(ROOT / name, settings)])
    v1 = [
        (
            ROOT / "memory" / name,
            {"memory.limit_in_bytes": memory_bytes, "memory.memsw.limit_in_bytes": memory_bytes},
        ),
        (ROOT / "pids" / name, {"pids.max": processes}),
        (ROOT / "cpu" / name, {"cpu.cfs_period_us": period, "cpu.cfs_quota_us": quota}),
    ]
    if all(directory.parent.is_dir() for directory, _ in v1[:2]):
        with contextlib.suppress(OSError):
            return _make("v1", [(d, s) for d, s in v1 if d.parent.is_dir()])
    return SlotGroup("")


def _v2_available() -> bool:
    try:
        controllers = (ROOT / "cgroup.controllers").read_text().split()
    except OSError:
        return False
    if not {"memory", "pids"} <= set(controllers):
        return False
    enabled = (ROOT / "cgroup.subtree_control").read_text().split()
    wanted = [c for c in ("memory", "pids", "cpu") if c in controllers and c not in enabled]
    try:
        if wanted:
            (ROOT / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in wanted))
    except OSError:
        return False
    return True


def _make(version: str, groups: list[tuple[Path, dict[str, object]]]) -> SlotGroup:
    """Create every group and write its limits; on any failure remove what was made and raise.
    Settings a kernel lacks (e.g. swap accounting off) are skipped."""
    slot = SlotGroup(version)
    try:
        for directory, settings in groups:
            directory.mkdir(exist_ok=True)
            slot.directories.append(directory)
            for name, value in settings.items():
                target = directory / name
                if target.exists() or name in ("memory.max", "memory.limit_in_bytes", "pids.max"):
                    target.write_text(str(value))
            slot.procs_fds.append(os.open(directory / "cgroup.procs", os.O_WRONLY))
    except OSError:
        slot.close()
        raise
    return slot
