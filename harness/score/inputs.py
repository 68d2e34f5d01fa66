"""Where scoring and the site get their runs: the one door records come through.

`load_runs` reads the finished runs and the machines of a store; `published_results` turns a
`results/` directory into such a store first. Both hand out `RunRecord`s; the results still go
through a scratch SQLite database, which validates and de-duplicates bundles exactly as an
import does.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import InputError
from harness.store import Store
from harness.store.queries import all_machines, finished_runs
from harness.store.records import MachineRecord, RunRecord
from harness.submit.bundles import import_validated, read_bundle, validate_bundle
from harness.submit.results import PublishedSubmission, RejectedFile, published_submission


@dataclass(frozen=True)
class StoredRuns:
    """A store's finished runs (oldest first, with their measurements, curves, artifacts and
    machine loaded) and its machine fingerprints (first seen first)."""

    runs: list[RunRecord]
    machines: list[MachineRecord]

    @property
    def latest_machines(self) -> dict[str, MachineRecord]:
        """The newest fingerprint of each hardware key."""
        latest: dict[str, MachineRecord] = {}
        for machine in self.machines:
            latest[machine.hardware_key] = machine
        return latest


def load_runs(store: Store) -> StoredRuns:
    """Every finished run and every machine of `store`, readable after the session closes."""
    with store.session() as session:
        runs = finished_runs(session)
        machines = all_machines(session)
    return StoredRuns(runs, machines)


@dataclass(frozen=True)
class PublishedResults:
    store: Store
    submissions: list[PublishedSubmission]
    rejected: list[RejectedFile]


@contextlib.contextmanager
def results_store(
    results_dir: Path | None,
) -> Iterator[tuple[Store | None, list[PublishedSubmission]]]:
    """`published_results` as (store, submissions); (None, []) without a directory, so callers
    fall back to their database."""
    if results_dir is None:
        yield None, []
        return
    with published_results(results_dir) as results:
        yield results.store, results.submissions


@contextlib.contextmanager
def published_results(results_dir: Path) -> Iterator[PublishedResults]:
    """A temporary store holding everything usable under `results_dir`, and its submissions.

    `results/<task>/<profile>/<name>.submission.json` are submissions (their runs are imported;
    `<name>.verification.json` beside each is its report); every other `*.json` file under
    `results_dir`, at any depth (`results/verifiers/<name>.json`), is a plain bundle. Each file
    is validated and imported on its own, in name order: a file that is invalid, conflicts with
    stored runs, or claims a run id another file already brought is rejected with its reason,
    and costs only itself.
    """
    from harness.store import open_store
    from harness.submit.submissions import REPORT_SUFFIX, SUFFIX, read_submission, submission_files

    if not results_dir.is_dir():
        raise InputError(f"{results_dir} is not a directory")
    bundles = sorted(
        path
        for path in results_dir.rglob("*.json")
        if not path.name.endswith((SUFFIX, REPORT_SUFFIX))
    )
    published: list[PublishedSubmission] = []
    rejected: list[RejectedFile] = []
    claimed: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="budgetbench-results-") as scratch:
        store = open_store(str(Path(scratch) / "results.db"))
        try:
            for path in [*bundles, *submission_files(results_dir)]:
                relative = path.relative_to(results_dir).as_posix()
                try:
                    if path.name.endswith(SUFFIX):
                        submission = read_submission(path)
                        bundle = validate_bundle(submission.bundle, path)
                    else:
                        submission, bundle = None, read_bundle(path)
                    _claim_runs(claimed, bundle, relative)
                    _import_one(store, path, bundle)
                    if submission is not None:
                        taken = {entry.slug for entry in published}
                        published.append(published_submission(results_dir, submission, taken))
                except InputError as exc:
                    reason = str(exc).removeprefix(f"{path}: ").removeprefix(f"{path}")
                    rejected.append(RejectedFile(relative, reason.strip(": ") or str(exc)))
            yield PublishedResults(store, published, rejected)
        finally:
            store.dispose()


def _claim_runs(claimed: dict[str, str], bundle: dict[str, Any], relative: str) -> None:
    """Every run belongs to one file: a second file with the same run id is rejected."""
    for run in bundle["runs"]:
        owner = claimed.get(run["id"])
        if owner is not None:
            raise InputError(f"run {run['id']} is already published by {owner}")
    for run in bundle["runs"]:
        claimed[run["id"]] = relative


def _import_one(store: Store, path: Path, bundle: dict[str, Any]) -> None:
    """Import one validated bundle in its own transaction; a database error rejects the file
    (`harness.store.runs.StoreRefused`, an InputError)."""
    import_validated(store, [(path, bundle)])
