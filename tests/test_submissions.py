"""Submit a real probe method, verify it (with a re-run), and reject every kind of tampering."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from conftest import assert_one_line_error, fast_probe_overrides, run_cli

from harness.bundles import build_bundle, content_hash, write_bundle
from harness.errors import InputError
from harness.machine import collect_fingerprint
from harness.registry import task_names
from harness.runner import execute, prepare, save_machine
from harness.site import build_site, results_store
from harness.spec import spec_task_names
from harness.store import open_store
from harness.store.queries import RunFilter
from harness.submissions import (
    read_submission,
    report_path,
    submission_hash,
    submit,
    write_submission,
)
from harness.verify import verify_submission, write_report

# Each kernel sleeps first, so its speed is set by the sleep and barely varies between runs on a
# busy machine: a re-run lands well within the probe's 50 % tolerance.
STEADY_METHOD = '''"""Eager kernels that pause 50 ms first <b>(steady)</b>."""
import time

import torch
import torch.nn.functional as F

HYPERPARAMETERS = {"pause_s": 0.05}


def matmul(a, b):
    time.sleep(HYPERPARAMETERS["pause_s"])
    return torch.matmul(a, b)


def attention(q, k, v):
    time.sleep(HYPERPARAMETERS["pause_s"])
    return F.scaled_dot_product_attention(q, k, v)


def copy(dst, src):
    time.sleep(HYPERPARAMETERS["pause_s"])
    dst.copy_(src)
'''


@pytest.fixture(scope="module")
def submitted(tmp_path_factory) -> Path:
    """A real open-division submission of the steady method: probe smoke, fast settings, the
    profile's two required seeds."""
    root = tmp_path_factory.mktemp("submission")
    method = root / "steady.py"
    method.write_text(STEADY_METHOD)
    store = open_store(f"sqlite:///{root / 'store.db'}")
    result = submit(
        store, "probe", str(method), "smoke", None, fast_probe_overrides(), "open",
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


def test_a_submitted_method_is_verified_and_a_rerun_of_one_seed_accepts_it(submitted):
    submission = read_submission(submitted)
    assert submission.files[0].path == "steady.py" and "pause 50 ms" in submission.files[0].text
    assert submission.data["seeds"] == [0, 1] and submission.data["division"] == "open"
    verification = verify_submission(submission, rerun=1, device="cpu")
    assert verification.accepted, verification.reasons
    assert verification.rerun_seeds == [0] and verification.hardware_difference == []
    compared = {c.metric for c in verification.comparisons}
    assert compared == {"matmul_fp32_tflops", "memory_bandwidth_gbps", "attention_tflops"}
    assert all(c.within and c.tolerance == 0.5 for c in verification.comparisons)
    assert any("modified settings" in w for w in verification.warnings)
    assert "method hash matches the enclosed source and hyperparameters" in verification.checks


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
    from harness.verify import Verification, _check_budget, _check_consistency, _Checks
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
    from harness.machine import MachineFingerprint

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
    verification = verify_submission(read_submission(path), rerun=1, device="cpu")
    assert verification.accepted, verification.reasons
    here = collect_fingerprint().hardware["cpu_model"]
    assert verification.hardware_difference == [f"cpu_model: 'Second Test CPU' -> {here!r}"]
