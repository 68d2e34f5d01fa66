"""The site as a target: hostile names in the data, bad files in `results/`, formula cells, and
personal data of whoever ran the benchmark. Every input here is a real bundle from a real probe
run, edited the way an attacker or a careless contributor would."""

from __future__ import annotations

import copy
import csv
import json
import re
from pathlib import Path

import pytest
from conftest import assert_one_line_error, fast_probe_overrides, run_cli
from helpers import run_probe

from harness.errors import InputError
from harness.paths import slug
from harness.publish.downloads import csv_cell
from harness.publish.site import build_site
from harness.score.inputs import published_results
from harness.store import open_store
from harness.store.queries import RunFilter
from harness.submit.bundles import build_bundle, content_hash, import_validated, validate_bundle
from harness.submit.submissions import submission_hash, submit, with_submitter, write_submission

HOSTILE = [
    "../../escaped",
    "..",
    "/tmp/absolute-escape",
    "a/../../b",
    "nul\x00byte",
    "x" * 5000,
    "C:\\windows\\escape",
    '=HYPERLINK("http://evil")',
]
# Every field of a run that names a file of the site (run ids are 32 hex digits by schema), with
# the length the store holds: longer names and control characters never get into a store (a
# one-line refusal on import, see test_hostile_input.py), so the site sees the longest and
# nastiest names the store admits.
FIELDS = {"task": 64, "profile": 64, "suite_version": 16, "task_spec_hash": 64,
          "method_hash": 64, "metric": 128, "curve": 128}  # fmt: skip
STORABLE = [
    (field, value[:length])
    for field, length in FIELDS.items()
    for value in HOSTILE
    if "\x00" not in value
]


@pytest.fixture(scope="module")
def probe_bundle(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("probe")
    url = f"sqlite:///{root / 'store.db'}"
    run_probe(url)
    return build_bundle(open_store(url), RunFilter())


def _hostile_bundle(bundle: dict) -> dict:
    """One copy of the probe run per (field, hostile value), each with its own run id."""
    template = bundle["runs"][0]
    runs = []
    for index, (field, value) in enumerate(STORABLE):
        run = copy.deepcopy(template)
        run["id"] = f"{index + 1:032x}"
        if field == "metric":
            run["measurements"][0]["name"] = value
        elif field == "curve":
            run["curve_points"] = [
                {"metric": value, "x": float(x), "x_unit": "step", "value": 1.0 / (x + 1),
                 "unit": "loss"}
                for x in range(3)
            ]  # fmt: skip
        else:
            run[field] = value
        runs.append(run)
    hostile = {**bundle, "runs": runs}
    hostile["sha256"] = content_hash(hostile)
    return validate_bundle(hostile, Path("hostile.json"))


def test_slugs_are_one_safe_segment_and_distinct():
    slugs = [slug(value) for value in HOSTILE]
    assert len(set(slugs)) == len(slugs)
    for value in slugs:
        assert value and "/" not in value and "\\" not in value and "\x00" not in value
        assert "." not in value and len(value) <= 80
    assert slug("eager-h100") == "eager-h100"  # clean names keep their readable form
    assert slug("a/b") != slug("a-b")


def test_hostile_names_never_leave_the_output_directory(probe_bundle, tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    import_validated(store, [(Path("hostile.json"), _hostile_bundle(probe_bundle))])
    outer = tmp_path / "outer"
    out = outer / "site"
    outer.mkdir()
    before = {p for p in tmp_path.rglob("*")}
    summary = build_site(store, out)
    assert summary.runs == len(STORABLE)
    created = {p for p in tmp_path.rglob("*")} - before
    assert created, "nothing was built"
    for path in created:
        assert path.resolve().is_relative_to(out.resolve()), f"{path} is outside {out}"
        assert len(path.name.encode()) <= 255
    assert not Path("/tmp/absolute-escape").exists()
    # Each run page exists and every page's local links resolve to built files.
    pages = list(out.rglob("*.html"))
    assert len(list((out / "runs").glob("*.html"))) == summary.runs
    for page in pages:
        text = page.read_text()
        assert "\x00" not in text
        for target in _local_links(text):
            assert (page.parent / target).resolve().is_file(), f"{page}: broken link {target}"


def _local_links(html: str) -> list[str]:
    import re

    return [
        link.split("#")[0]
        for link in re.findall(r'(?:href|src)="([^"]+)"', html)
        if not link.startswith(("http:", "https:", "#", "mailto:"))
    ]


@pytest.fixture(scope="module")
def submitted(tmp_path_factory) -> dict:
    """A real submission: the probe's reference method, fast settings, two seeds."""
    root = tmp_path_factory.mktemp("submitted")
    store = open_store(f"sqlite:///{root / 'store.db'}")
    result = submit(
        store, "probe", None, "smoke", None, fast_probe_overrides(), "open", "fast settings",
        device="cpu",
    )  # fmt: skip
    assert result.data is not None, result.problem
    return result.data


def test_a_bad_file_in_results_costs_only_itself(submitted, probe_bundle, tmp_path):
    results = tmp_path / "results"
    (results / "probe" / "smoke").mkdir(parents=True)
    write_submission(submitted, results / "probe" / "smoke" / "first.submission.json")
    copycat = copy.deepcopy(submitted)  # the same runs claimed again, with its own checksum
    copycat["description"] = "the same runs under another name"
    copycat["sha256"] = submission_hash(copycat)
    write_submission(copycat, results / "probe" / "smoke" / "second.submission.json")
    (results / "broken.json").write_text('{"format": "budgetbench-bundle", "runs": [')
    (results / "probe.json").write_text(json.dumps(probe_bundle))

    result = run_cli("site", "build", "--results", str(results), "--out", str(tmp_path / "site"))
    assert result.returncode == 0, result.stderr
    assert "rejected results/broken.json" in result.stderr
    assert "rejected results/probe/smoke/second.submission.json" in result.stderr
    index = (tmp_path / "site" / "index.html").read_text()
    assert "Rejected files" in index and "not valid JSON" in index
    assert "is already published by probe/smoke/first.submission.json" in index
    assert (tmp_path / "site" / "submissions" / "probe-smoke-first.html").is_file()
    assert not (tmp_path / "site" / "submissions" / "probe-smoke-second.html").exists()
    with published_results(results) as published:
        assert [s.relative_path for s in published.submissions] == [
            "probe/smoke/first.submission.json"
        ]
        assert [r.relative_path for r in published.rejected] == [
            "broken.json",
            "probe/smoke/second.submission.json",
        ]
        with published.store.session() as session:
            from harness.store.models import Run

            assert session.query(Run).count() == 3  # the bundle's run and the first's two


def test_formula_cells_are_neutralised(probe_bundle, tmp_path):
    for value in ("=1+1", "+1", "-cmd", "@SUM(A1)", "\tx", "\rx"):
        assert csv_cell(value) == "'" + value
    assert csv_cell(-1.5) == -1.5 and csv_cell("eager") == "eager"
    bundle = copy.deepcopy(probe_bundle)
    bundle["runs"][0]["method_name"] = '=HYPERLINK("http://evil","click")'
    bundle["sha256"] = content_hash(bundle)
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    import_validated(store, [(Path("b.json"), validate_bundle(bundle, Path("b.json")))])
    build_site(store, tmp_path / "site")
    (board,) = (tmp_path / "site" / "tasks" / "probe").glob("smoke-*.csv")
    (row,) = list(csv.DictReader(board.open()))
    assert row["method"] == '\'=HYPERLINK("http://evil","click")'


PRIVATE_HOST = "host-zq7-private"
PRIVATE_USER = "userzq7private"
FAILING_METHOD = '''"""A method that fails, so its traceback (with the file's path) is stored."""
import torch.nn.functional as F
def matmul(a, b, run): raise RuntimeError("boom")
def attention(q, k, v, run): return F.scaled_dot_product_attention(q, k, v)
def copy(dst, src, run): dst.copy_(src)
'''


def test_published_bundles_and_pages_carry_no_personal_data(tmp_path, monkeypatch):
    import harness.run.provenance

    monkeypatch.setattr(harness.run.provenance.socket, "gethostname", lambda: PRIVATE_HOST)
    for variable in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.setenv(variable, PRIVATE_USER)
    home = tmp_path / f"home-{PRIVATE_USER}"
    home.mkdir()
    (home / "failing.py").write_text(FAILING_METHOD)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store, _ = run_probe(url)
    _, (failed,) = run_probe(url, str(home / "failing.py"))
    assert failed.status == "failed" and str(home) in (failed.error or "")

    # The store keeps everything.
    with store.session() as session:
        from harness.store.models import Run

        provenance = session.get(Run, failed.run_id).provenance
        assert provenance["hostname"] == PRIVATE_HOST and provenance["user"] == PRIVATE_USER

    env = {"BUDGETBENCH_DB": url}
    run_cli("export", "--db", url, "-o", str(tmp_path / "public.json"), check=True, env=env)
    run_cli("export", "--db", url, "-o", str(tmp_path / "private.json"), "--include-private",
            check=True, env=env)  # fmt: skip
    public = (tmp_path / "public.json").read_text()
    assert PRIVATE_HOST in (tmp_path / "private.json").read_text()
    run_cli("site", "build", "--db", url, "--out", str(tmp_path / "site"), check=True)
    published = [public] + [p.read_text() for p in (tmp_path / "site").rglob("*") if p.is_file()]
    for text in published:
        for secret in (PRIVATE_HOST, PRIVATE_USER, str(home), str(tmp_path)):
            assert secret not in text
    (failed_run,) = [r for r in json.loads(public)["runs"] if r["status"] == "failed"]
    assert '"…/failing.py"' in failed_run["error"]  # the traceback keeps the file's name
    assert not {"hostname", "user", "pid", "command"} & set(failed_run["provenance"])


def test_submission_page_shows_scores_hardware_submitter_and_links(submitted, tmp_path):
    data = with_submitter(submitted, "Ada Lovelace", ["https://example.org/paper"], "fast-family")
    results = tmp_path / "results"
    write_submission(data, results / "probe" / "smoke" / "fast.submission.json")
    run_cli("site", "build", "--results", str(results), "--out", str(tmp_path / "site"), check=True)
    page = (tmp_path / "site" / "submissions" / "probe-smoke-fast.html").read_text()
    expected = ("Ada Lovelace", 'href="https://example.org/paper"', "fast-family",
                "<h2>Scores</h2>", "matmul fp32 TFLOP/s", "torch ", "open</strong>")  # fmt: skip
    for text in expected:
        assert text in page, text
    assert re.search(r"<strong>[0-9.e+-]+</strong> TFLOP/s</td><td>[0-9.e+-]+–[0-9.e+-]+", page)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--link", "javascript:alert(1)", "does not match"),
        ("--submitter", "x" * 300, "is too long"),
        ("--suite-entry", "../escape", "does not match"),
    ],
)
def test_bad_submitter_fields_fail_before_any_run(option, value, message, tmp_path):
    with pytest.raises(InputError, match=message):
        key = {"--link": "links", "--submitter": "submitter", "--suite-entry": "suite_entry"}
        fields = {"submitter": None, "links": [], "suite_entry": None}
        fields[key[option]] = [value] if option == "--link" else value
        with_submitter({}, **fields)
    result = run_cli(
        "submit", "probe", "--method", "eager", option, value, "-o", str(tmp_path / "s.json"),
        "--db", str(tmp_path / "s.db"),
    )  # fmt: skip
    assert_one_line_error(result, 2, message)
    assert not (tmp_path / "s.db").exists()  # nothing ran, nothing was stored


def test_an_entry_covering_every_task_gets_a_suite_score(probe_bundle, tmp_path):
    """The tasks' reference methods form one entry; given a result on every task of the suite
    (the real probe run, re-labelled per task: test input only), it is scored."""
    from harness.registry import load_task, task_names
    from harness.spec import load_spec, resolve_config, spec_task_names

    tasks = [t for t in spec_task_names("v1") if t in task_names()]
    template = probe_bundle["runs"][0]
    runs = []
    for index, task in enumerate(tasks):
        task_cls = load_task(task)
        metric = next(m for m in task_cls.metrics if m.name == (
            list(task_cls.headline_metrics) or [task_cls.metrics[0].name])[0])  # fmt: skip
        run = copy.deepcopy(template)
        run.update(
            id=f"{index + 1:032x}", task=task, profile="smoke", suite_version="v1",
            task_spec_hash=resolve_config(task_cls, load_spec(task), "smoke").task_spec_hash,
            method_name=task_cls.reference_methods[0], method_hash=f"{index:064x}",
            is_reference_method=True, gate_passed=True,
            measurements=[{"name": metric.name, "value": 2.0, "unit": metric.unit,
                           "higher_is_better": metric.higher_is_better, "samples": None}],
        )  # fmt: skip
        runs.append(run)
    bundle = {**probe_bundle, "runs": runs}
    bundle["sha256"] = content_hash(bundle)
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    import_validated(store, [(Path("all.json"), validate_bundle(bundle, Path("all.json")))])
    build_site(store, tmp_path / "site")
    suite = (tmp_path / "site" / "suite.html").read_text()
    assert "profile score" in suite and "<strong>1.000</strong>" in suite
    assert "reference methods" in suite and "no entry covers" not in suite.split("<h2>smoke")[1]
