"""Third-party output of a run, kept out of the user's stderr and in the run's log file.

Libraries a task uses write to stderr on their own: progress bars (tqdm under transformers and
datasets), warnings (FutureWarning, bitsandbytes' `kernels` notice), a child process's `fatal:
not a git repository`. In a CI log that buries the harness's own lines. While a run executes,
`third_party_output_to` points file descriptor 2 (so C extensions and child processes follow too)
at the run's log file; budgetbench's own console keeps writing to the real stderr, and afterwards
the caller learns how many lines were captured and where.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Captured:
    """Where a run's third-party output went and, once the run is over, how many lines."""

    log_file: Path
    lines: int = 0


@contextmanager
def third_party_output_to(log_file: Path) -> Iterator[Captured]:
    """Send everything written to stderr (fd 2) during the block to `log_file` (appended),
    except budgetbench's own console (`harness.cli.report`), which keeps the real stderr."""
    from harness.cli import report

    log_file.parent.mkdir(parents=True, exist_ok=True)
    captured = Captured(log_file)
    sys.stderr.flush()
    real_fd = os.dup(2)
    real_stderr = os.fdopen(real_fd, "w", buffering=1, closefd=False)
    start = log_file.stat().st_size if log_file.exists() else 0
    with log_file.open("ab") as log:
        os.dup2(log.fileno(), 2)
        report.error_console.file = real_stderr
        try:
            yield captured
        finally:
            sys.stderr.flush()
            os.dup2(real_fd, 2)
            report.error_console.file = None  # type: ignore[assignment]  # follow sys.stderr again
            real_stderr.close()
            os.close(real_fd)
    with log_file.open("rb") as log:
        log.seek(start)
        text = log.read().decode(errors="replace")
    captured.lines = sum(1 for line in text.replace("\r", "\n").splitlines() if line.strip())
