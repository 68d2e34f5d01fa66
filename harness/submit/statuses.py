"""What a submission's verification status means, and how to read one from a report file.

The statuses, strongest first:

- `verified`: `budgetbench verify --rerun N` re-ran the submission's method on a machine with the
  *same hardware key* as the submission's, stored those runs in the verifier's own store, and every
  compared metric agreed (see `harness.submit.verify`: the ratio's confidence interval lies inside
  the
  tolerance band).
- `reproduced elsewhere`: the same, but the re-run machine has *other hardware* (the report lists
  the hardware and software fields that differ). Speed numbers from other hardware are not the
  submitter's numbers; agreement there says the method does what it claims, not that its
  machine is as fast as stated.
- `checked`: consistency checks only (checksums, method hash, seeds, rules, the task's relations
  between numbers). No re-run, or a re-run that could not judge (inconclusive, or other hardware
  that disagrees). A checked submission may still hold invented numbers that are consistent.
- `rejected`: a check failed or a same-hardware re-run disagreed; the report lists every reason.

A status above `checked` is only worth what the report's author is: anyone can edit a JSON file
and recompute a SHA-256. A maintainer's report is signed (`verify --sign KEY`, an SSH signature
over the report's canonical JSON, see `harness.submit.signatures`); `report_status` caps an
unsigned or
badly signed report at `checked` when asked to require signatures.

Report fields (`<name>.verification.json`, format `budgetbench-verification` version 2). These
names are stable; readers may rely on them:

- `status`: one of STATUSES; `accepted`: status is not `rejected`.
- `submission_sha256`: the submission file's checksum the report is about (else the report is
  stale).
- `reasons`, `warnings`, `checks`: lists of one-line strings.
- `verifier`: the machine and budgetbench that wrote the report: `budgetbench_version`,
  `machine_id`, `hardware_key`, `software_key`, `hardware_label`, `fingerprint`.
- `rerun`: null without a re-run; else `seeds`, `rounds`, `run_ids` (runs in the verifier's
  store, named by `store`), `machine_id`, `hardware_key`, `same_hardware`, `hardware_difference`,
  `software_difference` (`field: submitted -> here` strings), `started_at`, `finished_at`.
- `comparisons`: one per compared metric: `metric`, `unit`, `submitted` and `rerun` (per-seed
  values), `scale` (`log` or `linear`), `estimate` (re-run / submitted on the log scale; the
  difference over the larger absolute mean on the linear one), `low`, `high` (its interval),
  `confidence`, `tolerance`, `verdict` (one of VERDICTS).
- `verified_at`: when the report was written (ISO 8601, UTC); `budgetbench_version`: its writer.
- `signature`: absent or {`principal`, `namespace`, `armored`}.
"""

from __future__ import annotations

from typing import Any

VERIFIED = "verified"
REPRODUCED_ELSEWHERE = "reproduced elsewhere"
CHECKED = "checked"
REJECTED = "rejected"
STATUSES = (VERIFIED, REPRODUCED_ELSEWHERE, CHECKED, REJECTED)

PENDING = "pending"
"""No report yet (not a verdict; the site shows it)."""
STALE = "stale"
"""The report is about another version of the submission file (not a verdict)."""

AGREES = "agrees"
DISAGREES = "disagrees"
INCONCLUSIVE = "inconclusive"
VERDICTS = (AGREES, DISAGREES, INCONCLUSIVE)
"""A re-run comparison's verdict on one metric."""

REPORT_FORMAT = "budgetbench-verification"
REPORT_FORMAT_VERSION = 2


def report_status(
    report: dict[str, Any] | None,
    submission: dict[str, Any],
    signed: bool = False,
    require_signature: bool = False,
) -> str:
    """The status a reader may show for `submission` given its report.

    Claims the report cannot back are lowered, never raised: a `verified` whose re-run machine
    has another hardware key than the submission's, or a re-run without stored run ids, reads as
    `checked`; with `require_signature`, so does any status above `checked` in a report that is
    not `signed` by an allowed signer.
    """
    if report is None:
        return PENDING
    if report.get("submission_sha256") != submission.get("sha256"):
        return STALE
    status = report.get("status")
    if status == REJECTED or report.get("accepted") is not True:
        return REJECTED
    if status not in (VERIFIED, REPRODUCED_ELSEWHERE):
        return CHECKED  # includes version-1 reports, which named no re-run machine
    if require_signature and not signed:
        return CHECKED
    rerun = report.get("rerun") or {}
    machine = next(
        (
            m
            for m in submission.get("bundle", {}).get("machines", [])
            if m.get("id") == submission.get("machine_id")
        ),
        {},
    )
    same = bool(machine) and rerun.get("hardware_key") == machine.get("hardware_key")
    if not rerun.get("run_ids") or (status == VERIFIED) != same:
        return CHECKED
    return status
