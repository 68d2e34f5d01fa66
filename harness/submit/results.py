"""The published results directory as readers see it: each submission under `results/` with the
status its verification report gives it, and the files that could not be used, with why.

Reading a report and judging its signature is this package's job, so the scoring and the site
take these records as they are and never open a report themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.paths import SLUG_LIMIT, slug
from harness.submit.submissions import Submission


@dataclass(frozen=True)
class RejectedFile:
    """A file under `results/` the site could not use, and why: listed, never fatal."""

    relative_path: str
    reason: str


@dataclass(frozen=True)
class PublishedSubmission:
    """A submission under `results/` as the site shows it, with its verification status."""

    slug: str
    relative_path: str
    data: dict[str, Any]
    report: dict[str, Any] | None
    status: str
    """verified (accepted after a re-run), checked (accepted, no re-run), rejected, pending (no
    report yet) or stale (the report is of another version of the file)."""
    run_ids: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return self.status in ("verified", "checked")

    @property
    def machine(self) -> dict[str, Any] | None:
        """The bundle's machine the submission's runs ran on."""
        machines = self.data["bundle"]["machines"]
        return next((m for m in machines if m["id"] == self.data["machine_id"]), None)

    @property
    def hardware_key(self) -> str:
        return (self.machine or {}).get("hardware_key", "")

    def matches(self, task: str, spec_hash: str, method_hash: str, hardware_key: str) -> bool:
        data = self.data
        stated = (data["task"], data["task_spec_hash"], data["method"]["method_hash"])
        wanted = (task, spec_hash, method_hash)
        return stated == wanted and (self.machine or {}).get("hardware_key") == hardware_key


def published_submission(
    results_dir: Path, submission: Submission, taken: set[str]
) -> PublishedSubmission:
    """`submission` (a file under `results_dir`) with its report's status and a page slug none
    of `taken` has."""
    from harness.submit.signatures import ALLOWED_SIGNERS, signed_by
    from harness.submit.statuses import report_status
    from harness.submit.submissions import report_path
    from harness.submit.verify import read_report

    relative = submission.path.relative_to(results_dir).as_posix()
    report = read_report(report_path(submission.path))
    # Above *checked* only from a report an allowed signer signed, once the results name any.
    signers = results_dir / ALLOWED_SIGNERS
    signed = report is not None and signed_by(report, signers) is not None
    status = report_status(report, submission.data, signed, signers.is_file())
    return PublishedSubmission(
        slug=_submission_slug(relative, taken),
        relative_path=relative,
        data=submission.data,
        report=report,
        status=status,
        run_ids=[run["id"] for run in submission.runs],
    )


def _submission_slug(relative: str, taken: set[str]) -> str:
    """`probe/standard/eager-h100.submission.json` -> `probe-standard-eager-h100`: each folder
    slugged; a name another submission already has gets the hash of its whole path."""
    parts = relative.removesuffix(".submission.json").split("/")
    readable = "-".join(slug(part) for part in parts)
    if readable in taken or len(readable) > 2 * SLUG_LIMIT:
        return slug(relative)
    return readable


def suite_entries(submissions: list[PublishedSubmission]) -> dict[tuple[str, str, str], str]:
    """(task, method hash, hardware key) -> the `--suite-entry` name its accepted submission
    declares: the method families the suite score groups across tasks."""
    return {
        (s.data["task"], s.data["method"]["method_hash"], s.hardware_key): s.data["suite_entry"]
        for s in submissions
        if s.accepted and s.data.get("suite_entry")
    }
