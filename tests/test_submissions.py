"""Submit a real probe method, verify it (with a re-run), and reject every kind of tampering."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from conftest import FAST_PROBE, assert_one_line_error, fast_probe_overrides, run_cli

from harness.errors import InputError
from harness.publish.site import build_site
from harness.registry import task_names
from harness.run.machine import collect_fingerprint
from harness.run.runner import execute, prepare, save_machine
from harness.score.inputs import results_store
from harness.spec import spec_task_names
from harness.store import open_store
from harness.store.queries import RunFilter, find_runs
from harness.submit.bundles import build_bundle, content_hash, write_bundle
from harness.submit.statuses import report_status
from harness.submit.submissions import (
    read_submission,
    report_path,
    submission_hash,
    submit,
    write_submission,
)
from harness.submit.verify import verify_submission, write_report

# Each kernel sleeps first, so its speed is set by the sleep and barely varies between runs on a
# busy machine: a re-run lands well within the probe's 50 % tolerance.
STEADY_METHOD = '''"""Eager kernels that pause 50 ms first <b>(steady)</b>."""
import time

import torch
import torch.nn.functional as F

HYPERPARAMETERS = {"pause_s": 0.05}


def matmul(a, b, run):
    time.sleep(run.hyperparameters["pause_s"])
    return torch.matmul(a, b)


def attention(q, k, v, run):
    time.sleep(run.hyperparameters["pause_s"])
    return F.scaled_dot_product_attention(q, k, v)


def copy(dst, src, run):
    time.sleep(run.hyperparameters["pause_s"])
    dst.copy_(src)
'''


@pytest.fixture(scope="module")
def submitted(tmp_path_factory) -> Path:
    """A real open-division submission of the steady method: probe smoke, fast settings, the
    profile's two required seeds; each number the median of 5 repetitions, so one sleep that a
    busy machine stretched does not move it."""
    root = tmp_path_factory.mktemp("submission")
    method = root / "steady.py"
    method.write_text(STEADY_METHOD)
    store = open_store(f"sqlite:///{root / 'store.db'}")
    result = submit(
        store, "probe", str(method), "smoke", None, [*fast_probe_overrides(), "repeats=5"], "open",
        "tiny probe settings so the test runs in seconds", device="cpu",
    )  # fmt: skip
    assert result.data is not None, result.problem
    assert [o.seed for o in result.outcomes] == [0, 1]
    path = root / "results" / "probe" / "smoke" / "steady.submission.json"
    write_submission(result.data, path)
    return path


def _tampered(submitted: Path, tmp_path: Path, change, reseal: bool = False) -> Path:
    data = json.loads(submitted.read_text())
    change(data)
    if reseal:  # a careful forger recomputes both checksums
        data["bundle"]["sha256"] = content_hash(data["bundle"])
        data["sha256"] = submission_hash(data)
    path = tmp_path / "tampered.submission.json"
    path.write_text(json.dumps(data))
    return path


def _reasons(path: Path) -> list[str]:
    verification = verify_submission(read_submission(path))
    assert not verification.accepted
    return verification.reasons


def _verified_unless_too_busy_to_tell(verification, status: str) -> None:
    """An honest re-run is never rejected: it earns `status`, or, on a machine so loaded that the
    seeds' intervals still straddle the band after every round, stays checked."""
    verdicts = {c.verdict for c in verification.comparisons}
    assert "disagrees" not in verdicts, verification.warnings
    if verdicts == {"agrees"}:
        assert verification.status == status
    else:
        assert verification.status == "checked" and verification.rerun["rounds"] == 3
        assert any("inconclusive after 3 round(s)" in w for w in verification.warnings)


def test_a_rerun_on_the_same_hardware_verifies_and_its_runs_stay_in_the_verifiers_store(
    submitted, tmp_path
):
    submission = read_submission(submitted)
    assert submission.files[0].path == "steady.py" and "pause 50 ms" in submission.files[0].text
    assert submission.data["seeds"] == [0, 1] and submission.data["division"] == "open"
    assert verify_submission(submission).status == "checked"  # no re-run, no more than checked
    store = open_store(f"sqlite:///{tmp_path / 'verifier.db'}")
    verification = verify_submission(submission, rerun=2, device="cpu", store=store)
    assert verification.accepted, verification.reasons
    _verified_unless_too_busy_to_tell(verification, "verified")
    rerun = verification.rerun
    assert rerun["seeds"] == [0, 1] and rerun["same_hardware"]
    assert rerun["hardware_difference"] == []
    here = collect_fingerprint()
    assert rerun["machine_id"] == verification.verifier["machine_id"] == here.id
    with store.session() as session:
        stored = find_runs(session, RunFilter(run_ids=tuple(rerun["run_ids"])))
        assert {r.id for r in stored} == set(rerun["run_ids"])
        assert len(stored) == 2 * rerun["rounds"]
        assert all(r.machine_id == here.id and r.status == "succeeded" for r in stored)
    compared = {c.metric for c in verification.comparisons}
    assert compared == {"matmul_fp32_tflops", "memory_bandwidth_gbps", "attention_tflops"}
    assert all(c.tolerance == 0.5 for c in verification.comparisons)
    assert all(c.scale == "log" and c.low <= c.estimate <= c.high for c in verification.comparisons)
    assert any("modified settings" in w for w in verification.warnings)
    assert "method hash matches the enclosed source and hyperparameters" in verification.checks
    report = verification.as_dict()
    assert report["status"] == verification.status and report["format_version"] == 2
    assert report_status(report, submission.data) == verification.status


def test_tampered_method_source_is_rejected_by_its_hash(submitted, tmp_path):
    def edit(data):
        file = data["method"]["files"][0]
        file["text"] = file["text"].replace('"pause_s": 0.05', '"pause_s": 0.0')

    reasons = _reasons(_tampered(submitted, tmp_path, edit))
    assert any(r.startswith("submission checksum mismatch") for r in reasons)
    assert any(r.startswith("method hash mismatch") for r in reasons)
    # Resealed, the checksum passes but the hash over the source still does not.
    resealed = _reasons(_tampered(submitted, tmp_path, edit, reseal=True))
    assert [r for r in resealed if "method hash" in r] and not [
        r for r in resealed if "checksum" in r
    ]


def test_a_tampered_number_is_caught_by_checksum_and_by_consistency(submitted, tmp_path):
    def double_matmul(data):
        run = data["bundle"]["runs"][0]
        measurement = next(m for m in run["measurements"] if m["name"] == "matmul_fp32_tflops")
        measurement["value"] *= 2

    reasons = _reasons(_tampered(submitted, tmp_path, double_matmul))
    assert any(r.startswith("bundle checksum mismatch") for r in reasons)
    assert any("inconsistent numbers: matmul_fp32_tflops" in r for r in reasons)
    resealed = _reasons(_tampered(submitted, tmp_path, double_matmul, reseal=True))
    assert len(resealed) == 1 and "median of its recorded samples" in resealed[0]


def test_too_few_seeds_are_rejected_with_the_required_count(submitted, tmp_path):
    def drop_seed(data):
        data["bundle"]["runs"] = data["bundle"]["runs"][:1]
        data["seeds"] = [data["bundle"]["runs"][0]["seed"]]

    reasons = _reasons(_tampered(submitted, tmp_path, drop_seed, reseal=True))
    assert reasons == ["1 seed(s) submitted; task 'probe' profile 'smoke' requires 2"]
    reasons = _reasons(_tampered(submitted, tmp_path, lambda d: d.update(seeds=[0, 1, 2])))
    assert any("declared seeds [0, 1, 2] differ from the runs' seeds [0, 1]" in r for r in reasons)


def test_an_unknown_suite_version_is_rejected(submitted, tmp_path):
    reasons = _reasons(
        _tampered(submitted, tmp_path, lambda d: d.update(suite_version="v99"), reseal=True)
    )
    assert any("suite version 'v99' is unknown here (installed: v1" in r for r in reasons)


def test_a_closed_submission_may_not_change_settings(submitted, tmp_path):
    reasons = _reasons(
        _tampered(submitted, tmp_path, lambda d: d.update(division="closed"), reseal=True)
    )
    assert any(r.startswith("closed division, but settings were changed") for r in reasons)
    with pytest.raises(InputError, match="--division open"):
        submit(open_store(f"sqlite:///{tmp_path / 's.db'}"), "probe", "eager", "smoke", None,
               fast_probe_overrides(), "closed", "")  # fmt: skip


def test_submit_refuses_fewer_seeds_than_the_profile_requires(tmp_path):
    with pytest.raises(InputError, match="requires 2 seeds per submission"):
        submit(open_store(f"sqlite:///{tmp_path / 's.db'}"), "probe", "eager", "smoke", 1,
               fast_probe_overrides(), "open", "fast")  # fmt: skip


def test_verify_exit_codes_accepted_rejected_and_unreadable(submitted, tmp_path):
    accepted = run_cli("verify", str(submitted), "--report", str(tmp_path / "report.json"))
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert "ACCEPTED" in accepted.stdout
    assert json.loads((tmp_path / "report.json").read_text())["accepted"] is True
    tampered = _tampered(submitted, tmp_path, lambda d: d.update(suite_version="v99"))
    rejected = run_cli("verify", str(tampered))
    assert rejected.returncode == 1 and "REJECTED" in rejected.stdout
    assert "submission checksum mismatch" in rejected.stdout and "'v99'" in rejected.stdout
    truncated = tmp_path / "truncated.submission.json"
    truncated.write_text(submitted.read_text()[:500])
    assert_one_line_error(run_cli("verify", str(truncated)), 2, "not valid JSON")


def test_site_from_results_shows_the_submission_status_and_the_suite_score(submitted, tmp_path):
    results = tmp_path / "results"
    target = results / "probe" / "smoke" / submitted.name
    target.parent.mkdir(parents=True)
    target.write_text(submitted.read_text())
    write_report(verify_submission(read_submission(target)), report_path(target))
    # A standard smoke run of the reference method, as a plain bundle, gives the suite a score.
    store = open_store(f"sqlite:///{tmp_path / 'reference.db'}")
    machine_id = save_machine(store, collect_fingerprint())
    list(execute(store, prepare("probe", None, "smoke", "cpu"), [0], machine_id))
    write_bundle(build_bundle(store, RunFilter()), results / "reference.json")

    with results_store(results) as (results_db, submissions):
        assert [s.status for s in submissions] == ["checked"]
        build_site(results_db, tmp_path / "site", submissions)
    site = tmp_path / "site"
    (board,) = [p for p in (site / "tasks" / "probe").glob("smoke-*.html")]
    assert "submission: checked" in board.read_text()
    page = (site / "submissions" / "probe-smoke-steady.html").read_text()
    assert "&lt;b&gt;(steady)&lt;/b&gt;" in page and "<b>(steady)" not in page  # source escaped
    assert "checks passed" in page and "accepted" in page
    method_page = site / "methods" / f"{read_submission(target).method_hash[:16]}.html"
    assert "submissions/probe-smoke-steady.html" in method_page.read_text()
    suite = (site / "suite.html").read_text()
    # The reference methods are one entry; with a result on the probe alone it covers 1 of the
    # suite's tasks, so it is listed as missing the others and gets no score.
    tasks = [t for t in spec_task_names("v1") if t in task_names()]
    assert f"no entry covers all {len(tasks)} tasks" in suite
    assert "reference methods" in suite and "profile score" not in suite
    assert "steady" not in suite  # modified settings are never scored with the standard ones

    # Editing the file after its report makes the status stale; no report at all is pending.
    data = copy.deepcopy(json.loads(target.read_text()))
    data["description"] = "changed after review"
    data["sha256"] = submission_hash(data)
    target.write_text(json.dumps(data))
    with results_store(results) as (_, submissions):
        assert [s.status for s in submissions] == ["stale"]
    report_path(target).unlink()
    with results_store(results) as (_, submissions):
        assert [s.status for s in submissions] == ["pending"]


def test_a_budget_overrun_beyond_one_step_and_timed_evaluation_are_reasons():
    from harness.submit.verify import Verification, _check_budget, _check_consistency, _Checks
    from tasks.cramming import CrammingTask

    verification = Verification("x", "0" * 64, "cramming", "smoke", "m", "h")
    checks = _Checks(verification)
    run = {"timed_s": 61.0, "wall_s": 90.0, "settings": {"budget_s": 60.0}, "curve_points": []}
    _check_budget(checks, "run a", run, {"longest_step_s": 2.0})  # within one step: fine
    assert verification.reasons == []
    _check_budget(checks, "run b", {**run, "timed_s": 63.0}, {"longest_step_s": 2.0})
    _check_consistency(checks, "run c", CrammingTask, run, {"budget_used_s": 58.0})
    assert verification.reasons[0].startswith("run b: exceeded its budget: 63.000 timed seconds")
    assert "work after training (evaluation) was timed" in verification.reasons[1]


def test_a_rerun_on_other_hardware_names_the_difference(submitted, tmp_path):
    from harness.run.machine import MachineFingerprint

    def other_machine(data):
        machine = data["bundle"]["machines"][0]
        fingerprint = MachineFingerprint(
            {**machine["fingerprint"]["hardware"], "cpu_model": "Second Test CPU"},
            machine["fingerprint"]["software"],
        )
        keys = {"machine_id": fingerprint.id, "hardware_key": fingerprint.hardware_key}
        machine.update(id=fingerprint.id, hardware_key=fingerprint.hardware_key)
        machine.update(fingerprint=fingerprint.as_dict())
        for run in data["bundle"]["runs"]:
            run.update(keys)
        data["machine_id"] = fingerprint.id

    path = _tampered(submitted, tmp_path, other_machine, reseal=True)
    store = open_store(f"sqlite:///{tmp_path / 'verifier.db'}")
    verification = verify_submission(read_submission(path), rerun=2, device="cpu", store=store)
    assert verification.accepted, verification.reasons
    _verified_unless_too_busy_to_tell(verification, "reproduced elsewhere")
    here = collect_fingerprint().hardware["cpu_model"]
    assert verification.rerun["hardware_difference"] == [
        f"cpu_model: 'Second Test CPU' -> {here!r}"
    ]
    # A contributor who edits the report to claim "verified" gets "checked" from the reader.
    forged = {**verification.as_dict(), "status": "verified"}
    assert report_status(forged, read_submission(path).data) == "checked"


def _scale_metric_everywhere(data, factor: float) -> None:
    """Scale every measured number consistently (values and raw repetitions), as a careful
    forger would, so the consistency checks still pass."""
    for run in data["bundle"]["runs"]:
        for measurement in run["measurements"]:
            measurement["value"] *= factor
            measurement["samples"] = [s * factor for s in measurement["samples"] or []] or None


@pytest.mark.parametrize("factor", [2.0, 0.5])
def test_numbers_twice_too_high_or_too_low_are_rejected_alike_by_a_same_hardware_rerun(
    submitted, tmp_path, factor
):
    """Main measured the gap against the submitted number: x2 read as 50 % and x0.5 as 50 %,
    both inside the probe's 50 % tolerance, so both forgeries were accepted."""
    path = _tampered(submitted, tmp_path, lambda d: _scale_metric_everywhere(d, factor), True)
    assert verify_submission(read_submission(path)).status == "checked"  # consistent numbers
    store = open_store(f"sqlite:///{tmp_path / 'verifier.db'}")
    verification = verify_submission(read_submission(path), rerun=2, device="cpu", store=store)
    # No metric may agree with a doubled or halved number. A machine too busy to tell (every
    # interval straddling the band after three rounds) leaves it checked, never verified.
    verdicts = {c.metric: c.verdict for c in verification.comparisons}
    assert "agrees" not in verdicts.values(), verdicts
    if "disagrees" in verdicts.values():
        assert verification.status == "rejected"
        (reason,) = verification.reasons
        assert reason.startswith("re-run on the same hardware disagrees beyond tolerance")
    else:
        assert verification.status == "checked"
        assert any("inconclusive after 3 round(s)" in w for w in verification.warnings)
    for c in verification.comparisons:
        if c.verdict == "disagrees":
            assert c.high < 1 / 1.5 if factor > 1 else c.low > 1.5


def test_a_made_up_machine_with_inflated_numbers_is_never_more_than_checked(submitted, tmp_path):
    """Main accepted a claimed other machine with 100x the measured numbers (other hardware
    only warns), and the site showed it as verified."""
    from harness.run.machine import MachineFingerprint

    def forge(data):
        _scale_metric_everywhere(data, 100.0)
        machine = data["bundle"]["machines"][0]
        hardware = {**machine["fingerprint"]["hardware"], "cpu_model": "192x AMD EPYC 9965"}
        fingerprint = MachineFingerprint(hardware, machine["fingerprint"]["software"])
        machine.update(id=fingerprint.id, hardware_key=fingerprint.hardware_key)
        machine.update(fingerprint=fingerprint.as_dict())
        for run in data["bundle"]["runs"]:
            run.update(machine_id=fingerprint.id, hardware_key=fingerprint.hardware_key)
        data["machine_id"] = fingerprint.id

    path = _tampered(submitted, tmp_path, forge, reseal=True)
    store = open_store(f"sqlite:///{tmp_path / 'verifier.db'}")
    verification = verify_submission(read_submission(path), rerun=1, device="cpu", store=store)
    assert verification.status == "checked"
    assert any(
        "re-run on different hardware" in w and "disagrees" in w for w in verification.warnings
    )
    results = tmp_path / "results"
    target = results / "probe" / "smoke" / "forged.submission.json"
    target.parent.mkdir(parents=True)
    target.write_text(path.read_text())
    write_report(verification, report_path(target))
    with results_store(results) as (_, submissions):
        assert [s.status for s in submissions] == ["checked"]


def test_a_swapped_and_rehashed_source_is_revealed_by_the_rerun(submitted, tmp_path):
    """Runs of the steady method presented as a slower method (source swapped, method hash and
    the runs' names and hashes recomputed, both checksums resealed): every consistency check
    passes, and only the re-run can tell; main had no same-hardware test of this."""
    from harness.run.methods import method_hash

    slow = STEADY_METHOD.replace('"pause_s": 0.05', '"pause_s": 0.3')
    source = tmp_path / "slow.py"
    source.write_text(slow)
    new_hash = method_hash((source,), {"pause_s": 0.3})

    def swap(data):
        data["method"].update(name="slow", method_hash=new_hash)
        data["method"]["hyperparameters"] = {"pause_s": 0.3}
        data["method"]["files"] = [{"path": "slow.py", "text": slow}]
        for run in data["bundle"]["runs"]:
            run.update(method_name="slow", method_hash=new_hash)
            run["hyperparameters"] = {"pause_s": 0.3}

    path = _tampered(submitted, tmp_path, swap, reseal=True)
    assert verify_submission(read_submission(path)).status == "checked"
    store = open_store(f"sqlite:///{tmp_path / 'verifier.db'}")
    verification = verify_submission(read_submission(path), rerun=2, device="cpu", store=store)
    assert verification.status == "rejected"
    assert any("disagrees beyond tolerance" in r for r in verification.reasons)


def test_runs_renamed_to_another_method_are_rejected(submitted, tmp_path):
    def rename(data):
        for run in data["bundle"]["runs"]:
            run["method_name"] = "eager"

    reasons = _reasons(_tampered(submitted, tmp_path, rename, reseal=True))
    assert all("ran method eager" in r for r in reasons) and len(reasons) == 2

    def rename_all(data):  # the submission's name too: only loading the source tells
        rename(data)
        data["method"]["name"] = "eager"

    path = _tampered(submitted, tmp_path, rename_all, reseal=True)
    assert verify_submission(read_submission(path)).accepted
    store = open_store(f"sqlite:///{tmp_path / 'verifier.db'}")
    verification = verify_submission(read_submission(path), rerun=1, device="cpu", store=store)
    assert verification.status == "rejected"
    assert verification.reasons[0].startswith("re-run: the enclosed source loads as method steady")


def test_seed_0_replayed_as_seed_1_is_rejected(submitted, tmp_path):
    """Main accepted a copy of seed 0's run relabelled seed 1 with a fresh id."""

    def replay(data):
        first = data["bundle"]["runs"][0]
        copy_of_first = {**copy.deepcopy(first), "id": "f" * 32, "seed": 1}
        data["bundle"]["runs"] = [first, copy_of_first]

    reasons = _reasons(_tampered(submitted, tmp_path, replay, reseal=True))
    assert any("seed 1's run repeats seed 0's clock readings exactly" in r for r in reasons)


def test_the_committed_h100_submission_is_checked_not_verified():
    root = Path(__file__).resolve().parent.parent / "results"
    path = root / "probe" / "standard" / "eager-h100.submission.json"
    submission = read_submission(path)
    verification = verify_submission(submission)
    assert verification.accepted, verification.reasons
    assert verification.status == "checked" and verification.rerun is None
    assert verification.verifier["machine_id"] == collect_fingerprint().id
    report = json.loads(report_path(path).read_text())
    assert report_status(report, submission.data) == "checked"


def test_a_signed_report_is_told_from_an_edited_one(submitted, tmp_path):
    import subprocess

    from harness.submit.signatures import Signer, signed_by

    key = tmp_path / "maintainer"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f"maintainer@example.org {(tmp_path / 'maintainer.pub').read_text()}")
    submission = read_submission(submitted)
    store = open_store(f"sqlite:///{tmp_path / 'verifier.db'}")
    verification = verify_submission(submission, rerun=1, device="cpu", store=store)
    report = write_report(verification, tmp_path / "r.json", Signer(key, "maintainer@example.org"))
    assert signed_by(report, allowed) == "maintainer@example.org"
    assert report["status"] in ("verified", "checked")  # checked: a busy machine, inconclusive
    assert report_status(report, submission.data, True, require_signature=True) == report["status"]
    edited = {**report, "warnings": []}
    edited["comparisons"] = [{**c, "verdict": "agrees"} for c in report["comparisons"]]
    edited["checks"] = [*report["checks"], "an extra check"]
    assert signed_by(edited, allowed) is None
    unsigned = {k: v for k, v in report.items() if k != "signature"}
    assert signed_by(unsigned, allowed) is None
    forged = {**unsigned, "status": "verified"}
    assert report_status(forged, submission.data, False, require_signature=True) == "checked"
    # Signed by a key the allowed-signers file does not list: not a maintainer's.
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    impostor = Signer(other, "maintainer@example.org").sign(unsigned)
    assert signed_by(impostor, allowed) is None


def test_the_comparison_is_symmetric_and_a_wide_spread_is_inconclusive_not_a_rejection():
    from harness.submit.verify import _compare_metric

    low, high = [10.0, 10.2, 9.9], [20.0, 20.3]
    up = _compare_metric("m", "u", low, high, tolerance=0.5)
    down = _compare_metric("m", "u", [20.0, 20.3, 19.9], [10.0, 10.1], tolerance=0.5)
    assert up.verdict == down.verdict == "disagrees" and up.scale == "log"
    assert up.estimate == pytest.approx(2.0, rel=0.02) and down.estimate == pytest.approx(
        0.5, rel=0.02
    )
    # Swapping the sides gives the reciprocal ratio and interval: x2 and x0.5 are equally far.
    swapped = _compare_metric("m", "u", high, low, tolerance=0.5)
    assert swapped.estimate == pytest.approx(1 / up.estimate)
    assert (swapped.low, swapped.high) == pytest.approx((1 / up.high, 1 / up.low))
    # Main's relative gap called x2 a 50 % difference and x0.5 a 100 % one.
    agree = _compare_metric("m", "u", [10.0, 10.1, 9.9], [10.05, 9.95], tolerance=0.5)
    assert agree.verdict == "agrees" and agree.low < 1 < agree.high
    # A loaded machine: the honest seeds scatter so widely that a 1.4x gap is not evidence.
    loaded = _compare_metric("m", "u", [10.0, 14.0, 7.0], [16.0, 6.0], tolerance=0.5)
    assert loaded.verdict == "inconclusive"
    # One value per side has no spread to judge by.
    assert _compare_metric("m", "u", [10.0], [10.0], tolerance=0.5).verdict == "inconclusive"
    # A value <= 0 compares on the linear scale, relative to the larger mean.
    linear = _compare_metric("m", "u", [0.0, 0.01, -0.01], [1.0, 1.01], tolerance=0.1)
    assert linear.scale == "linear" and linear.verdict == "disagrees"


def _stored_run_ids(db: Path, *args: str) -> list[str]:
    result = run_cli("run", "probe", *args, "--db", str(db), "--json", check=True)
    return [outcome["run_id"] for outcome in json.loads(result.stdout)]


def test_submit_from_runs_packages_stored_runs_and_refuses_what_is_not_the_submission(tmp_path):
    db = tmp_path / "store.db"
    run_ids = _stored_run_ids(db, *FAST_PROBE, "--seeds", "2")
    other_settings = _stored_run_ids(db, *FAST_PROBE, "--set", "repeats=3", "--seeds", "1")
    open_division = ("--division", "open", "--description", "fast probe settings", *FAST_PROBE)

    output = tmp_path / "from-runs.submission.json"
    result = run_cli(
        "submit", "probe", "--method", "eager", *open_division, "--db", str(db), "-o", str(output),
        "--from-runs", run_ids[0][:8], "--from-runs", run_ids[1],
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(output.read_text())
    assert sorted(run["id"] for run in data["bundle"]["runs"]) == sorted(run_ids)
    assert data["seeds"] == [0, 1]
    assert run_cli("verify", str(output)).returncode == 0  # the same checks as a fresh submit

    refusals = {
        "not a run of this submission": (run_ids[0], other_settings[0]),  # other settings
        "requires 2 seeds": (run_ids[0],),
        "repeat a seed": (run_ids[0], run_ids[0]),
    }
    for message, ids in refusals.items():
        refused = tmp_path / "refused.submission.json"
        flags = [part for run_id in ids for part in ("--from-runs", run_id)]
        result = run_cli(
            "submit", "probe", "--method", "eager", *open_division, "--db", str(db),
            "-o", str(refused), *flags,
        )  # fmt: skip
        assert_one_line_error(result, 2, message)
        assert not refused.exists()


def test_submit_runs_its_seeds_in_a_pool(tmp_path):
    db = tmp_path / "store.db"
    output = tmp_path / "pool.submission.json"
    result = run_cli(
        "submit", "probe", "--method", "eager", "--division", "open", "--description", "fast",
        *FAST_PROBE, "--executor", "pool", "--workers", "2", "--db", str(db), "-o", str(output),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(output.read_text())
    assert data["seeds"] == [0, 1] and len(data["bundle"]["runs"]) == 2
    assert run_cli("verify", str(output)).returncode == 0
    slurm = run_cli(
        "submit", "probe", "--method", "eager", "--executor", "slurm", "-o", str(output) + ".x"
    )
    assert_one_line_error(slurm, 2, "submit --from-runs")
