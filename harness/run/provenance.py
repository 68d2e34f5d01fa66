"""Where a run came from: budgetbench's version, the command, host, user, process, Slurm job,
git state and the method's source files, stored with every run (`budgetbench show` prints it;
`export`, `submit` and the site leave the personal parts out)."""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
import sys
from typing import Any

from harness import __version__
from harness.paths import CHECKOUT_DIR, is_checkout
from tasks.base import Method


def provenance(method: Method) -> dict[str, Any]:
    """Where a run came from: versions, command, host, and the method's source files."""
    info: dict[str, Any] = {
        "budgetbench_version": __version__,
        "command": sys.argv,
        "hostname": socket.gethostname(),
        "user": _user(),
        "pid": os.getpid(),
        "method_sources": [str(path) for path in method.source_files],
    }
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size > 1:  # one run across several processes (torchrun)
        info["world_size"] = world_size
    info.update(_slurm_job())
    if is_checkout():
        info.update(_git_state())
    return info


def _slurm_job() -> dict[str, Any]:
    """Inside a Slurm job: its id as squeue and `budgetbench jobs` show it (ARRAYID_TASK for a
    job array) and how often it was requeued."""
    if "SLURM_JOB_ID" not in os.environ:
        return {}
    array_id, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    job_id = f"{array_id}_{task}" if array_id and task else os.environ["SLURM_JOB_ID"]
    return {
        "slurm_job_id": job_id,
        "slurm_restart_count": int(os.environ.get("SLURM_RESTART_COUNT", "0")),
    }


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def _git_state() -> dict[str, Any]:
    def git(*args: str) -> str | None:
        try:
            result = subprocess.run(
                ["git", "-C", str(CHECKOUT_DIR), *args], capture_output=True, text=True, timeout=5
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return result.stdout.strip() if result.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {}
    return {"git_commit": commit, "git_dirty": bool(git("status", "--porcelain"))}
