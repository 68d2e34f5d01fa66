"""The static site: built from a real store, escaped, and driven in headless Chromium."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
from pathlib import Path

import pytest
from conftest import assert_one_line_error, fast_probe_overrides, run_cli
from helpers import run_probe

from harness.publish.site import build_site
from harness.run.machine import MachineFingerprint, collect_fingerprint
from harness.run.runner import execute, prepare, save_machine
from harness.spec import load_spec, parse_overrides, resolve_config
from harness.store import open_store
from harness.store.queries import RunFilter
from harness.submit.bundles import build_bundle, content_hash, import_bundles, write_bundle

XSS_NAME = "<script>alert(1)</script>"
XSS_METHOD = f'''"""A method whose name and description try to inject <b>markup</b>."""
import torch.nn.functional as F
NAME = {XSS_NAME!r}
def matmul(a, b, run): return a @ b
def attention(q, k, v, run): return F.scaled_dot_product_attention(q, k, v)
def copy(dst, src, run): dst.copy_(src)
'''


def _second_machine_bundle(source_url: str, path: Path) -> None:
    """Re-attribute a real bundle's runs to another hardware fingerprint (test input only)."""
    bundle = build_bundle(open_store(source_url), RunFilter())
    machine = bundle["machines"][0]
    hardware = {**machine["fingerprint"]["hardware"], "cpu_model": "Second Test CPU"}
    fingerprint = MachineFingerprint(hardware=hardware, software=machine["fingerprint"]["software"])
    machine.update(
        id=fingerprint.id,
        hardware_key=fingerprint.hardware_key,
        software_key=fingerprint.software_key,
        hardware_label=fingerprint.hardware_label,
        fingerprint=fingerprint.as_dict(),
    )
    for index, run in enumerate(bundle["runs"]):
        run.update(
            id=f"{index + 1:032x}", machine_id=fingerprint.id, hardware_key=fingerprint.hardware_key
        )
    bundle["sha256"] = content_hash(bundle)
    write_bundle(bundle, path)


def _slug(overrides: list[str]) -> str:
    from tasks.probe import ProbeTask

    settings, _ = parse_overrides(overrides)
    return (
        "smoke-"
        + resolve_config(ProbeTask, load_spec("probe"), "smoke", settings).task_spec_hash[:12]
    )


FAST = _slug(fast_probe_overrides())
FAST_REPEATS_3 = _slug([*fast_probe_overrides(), "repeats=3"])


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """A site from a store with one standard smoke run, and with the fast test settings: two
    seeds of eager, an injecting method, eager on a second machine, and one run with repeats=3."""
    root = tmp_path_factory.mktemp("site")
    url = f"sqlite:///{root / 'store.db'}"
    store = open_store(url)
    machine_id = save_machine(store, collect_fingerprint())
    list(execute(store, prepare("probe", None, "smoke", "cpu"), [0], machine_id))
    run_probe(url, seeds=(0, 1))
    method = root / "xss.py"
    method.write_text(XSS_METHOD)
    run_probe(url, str(method))
    run_probe(url, extra=("repeats=3",))
    other = f"sqlite:///{root / 'other.db'}"
    run_probe(other, seeds=(0,))
    _second_machine_bundle(other, root / "second.json")
    import_bundles(store, [root / "second.json"])
    out = root / "site"
    summary = build_site(store, out)
    assert (summary.runs, summary.machines, summary.leaderboards) == (6, 2, 3)
    return out


def _leaderboards(site: Path) -> list[Path]:
    return sorted((site / "tasks" / "probe").glob("*.html"))


def test_every_page_escapes_names_from_methods(site):
    pages = list(site.rglob("*.html"))
    assert len(pages) >= 10
    for page in pages:
        assert XSS_NAME not in page.read_text(), page
    leaderboard = (site / "tasks" / "probe" / f"{FAST}.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in leaderboard


def test_modified_settings_get_their_own_leaderboard(site):
    names = {p.name for p in _leaderboards(site)}
    assert names == {"smoke.html", f"{FAST}.html", f"{FAST_REPEATS_3}.html", "methodology.html"}
    assert "modified settings" not in (site / "tasks" / "probe" / "smoke.html").read_text()
    for slug in (FAST, FAST_REPEATS_3):
        assert "modified settings" in (site / "tasks" / "probe" / f"{slug}.html").read_text()


def test_downloads_match_the_leaderboard(site):
    board = site / "tasks" / "probe" / f"{FAST}.html"
    records = json.loads(board.with_suffix(".json").read_text())
    rows = list(csv.DictReader(board.with_suffix(".csv").open()))
    assert len(records) == len(rows) == 3
    eager_here = next(r for r in records if r["method"] == "eager" and "Second" not in r["machine"])
    assert eager_here["runs_succeeded"] == 2 and eager_here["distinct_seeds"] == 2
    assert eager_here["ranked"] is True
    assert [r["method"] for r in records] == [r["method"] for r in rows]
    for record in records:
        assert (
            record["matmul_fp32_tflops_min"]
            <= record["matmul_fp32_tflops_value"]
            <= record["matmul_fp32_tflops_max"]
        )


def test_run_pages_link_their_raw_json(site):
    for page in (site / "runs").glob("*.html"):
        record = json.loads(page.with_suffix(".json").read_text())
        assert record["id"] in page.read_text()
        assert record["machine"]["hardware_key"] == record["hardware_key"]


def test_site_build_refuses_to_replace_a_foreign_directory(tmp_path):
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    result = run_cli("site", "build", "--db", str(tmp_path / "s.db"), "--out", str(foreign))
    assert_one_line_error(result, 2, "is not a budgetbench site")
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_site_build_from_bundles(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    run_probe(url)
    (tmp_path / "results").mkdir()
    write_bundle(build_bundle(open_store(url), RunFilter()), tmp_path / "results" / "a.json")
    result = run_cli(
        "site",
        "build",
        "--bundles",
        str(tmp_path / "results"),
        "--out",
        str(tmp_path / "out"),
        check=True,
    )
    assert "for 1 runs on 1 machines" in result.stdout
    assert (tmp_path / "out" / "index.html").is_file()


# The browser test: Debian's chromium driven by Playwright (browsers cannot be downloaded here).
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def browser_page():
    if not CHROMIUM:
        if os.environ.get("BUDGETBENCH_REQUIRE_BROWSER") == "1":
            pytest.fail("BUDGETBENCH_REQUIRE_BROWSER=1 but chromium is not installed")
        pytest.skip("chromium is not installed")
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync"],
        )  # fmt: skip
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("dialog", lambda d: problems.append(f"dialog opened: {d.message}"))
        yield page, problems
        browser.close()


def test_browse_the_site_in_chromium(site, browser_page, tmp_path):
    page, problems = browser_page
    page.goto((site / "index.html").as_uri())
    assert page.title() == "budgetbench · budgetbench"
    page.click(f"a[href='tasks/probe/{FAST}.html']")
    table = page.locator("table.leaderboard")
    rows = table.locator("tbody tr")
    assert rows.count() == 3  # eager here, the injecting method, eager on the second machine
    assert XSS_NAME in table.inner_text()  # shown as text, never run

    headers = [h.split("\n")[0].strip() for h in table.locator("thead th").all_inner_texts()]
    fp32 = headers.index("matmul fp32 TFLOP/s") + 1

    def fp32_values() -> list[float]:
        cells = rows.locator(f"td:nth-child({fp32})")
        return [float(v) for v in cells.evaluate_all("cells => cells.map(c => c.dataset.sort)")]

    header = table.locator("thead th").nth(fp32 - 1)
    header.click()
    assert header.get_attribute("aria-sort") == "ascending"
    assert fp32_values() == sorted(fp32_values())
    header.click()
    assert fp32_values() == sorted(fp32_values(), reverse=True)

    options = page.locator("select[data-filter=hardware] option").all_inner_texts()
    page.select_option(
        "select[data-filter=hardware]", label=next(o for o in options if "Second" in o)
    )
    visible = [r for r in rows.all() if r.is_visible()]
    assert len(visible) == 1 and "Second Test CPU" in visible[0].inner_text()
    page.screenshot(path=str(tmp_path / "leaderboard.png"), full_page=True)

    visible[0].locator("a[href*='runs/']").first.click()
    assert page.locator("h1").inner_text().startswith("Run ")
    assert page.locator("text=matmul_fp32_tflops").count() >= 1
    page.locator("a[href*='machines/']").first.click()
    assert "Second Test CPU" in page.locator("h1").inner_text()
    page.goto((site / "index.html").as_uri())
    page.locator("a[href*='machines/']", has_not_text="Second").click()  # the machine with history
    images = page.locator("figure img")
    assert images.count() >= 1
    assert all(img.evaluate("i => i.complete && i.naturalWidth > 0") for img in images.all())
    page.goto((site / "regressions.html").as_uri())
    page.goto((site / "tasks" / "probe" / "methodology.html").as_uri())
    assert "matmul(a, b, run)" in page.content()
    assert problems == []


RESULTS = Path(__file__).resolve().parent.parent / "results"
_PAGE_CHECKS = """(strict) => {
  const problems = [];
  const text = document.body.innerText;
  for (const raw of ["mathdefault", "{{ ", " }}", "{% ", "undefined", "Traceback"]) {
    if (text.includes(raw)) problems.push(`unrendered text ${raw}`);
  }
  if (document.documentElement.scrollWidth > window.innerWidth + 1) {
    problems.push(`page ${document.documentElement.scrollWidth}px wide`);
  }
  for (const table of document.querySelectorAll("table")) {
    if (!strict && table.parentElement.classList.contains("scroll")) continue;  // it scrolls
    const box = table.parentElement.getBoundingClientRect();
    if (table.getBoundingClientRect().width > box.width + 1) {
      problems.push(`table overflows: ${table.className || table.id}`);
    }
  }
  for (const img of document.querySelectorAll("img")) {
    if (!img.complete || img.naturalWidth === 0) problems.push(`image not shown: ${img.alt}`);
  }
  return problems;
}"""


def test_every_page_type_of_the_committed_results_renders(browser_page, tmp_path):
    """Each page type of the site built from `results/`: screenshot, no console error, no
    unrendered label, no overflowing table (BUDGETBENCH_SCREENSHOT_DIR keeps the pictures)."""
    out = tmp_path / "site"
    run_cli("site", "build", "--results", str(RESULTS), "--out", str(out), check=True)
    shots = Path(os.environ.get("BUDGETBENCH_SCREENSHOT_DIR") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    for svg in out.rglob("*.svg"):
        visible = re.sub(r"<!--.*?-->", "", svg.read_text(), flags=re.S)
        assert "mathdefault" not in visible, svg
    kinds = {
        "index": out / "index.html",
        "suite": out / "suite.html",
        "regressions": out / "regressions.html",
        **{f"leaderboard-{p.parent.name}-{p.stem}": p
           for p in sorted((out / "tasks").glob("*/*.html")) if p.stem != "methodology"},
        "methodology": out / "tasks" / "quant" / "methodology.html",
        "machine": next((out / "machines").glob("*.html")),
        "method": next((out / "methods").glob("*.html")),
        "submission": next((out / "submissions").glob("*.html")),
        "run-quant": _page_mentioning(out / "runs", "quant"),
        "run-probe": _page_mentioning(out / "runs", "probe"),
    }  # fmt: skip
    page, problems = browser_page
    for name, path in kinds.items():
        # A laptop (every table fits), and 200 % zoom of one (wide tables scroll in place).
        for width in (1280, 640):
            page.set_viewport_size({"width": width, "height": 900})
            page.goto(path.as_uri())
            page.wait_for_load_state("load")
            found = page.evaluate(_PAGE_CHECKS, width >= 1280)
            assert found == [], f"{name} at {width}px: {found}"
            page.screenshot(path=str(shots / f"{name}-{width}.png"), full_page=True)
    assert problems == []
    smoke = (out / "tasks" / "probe" / "smoke.html").read_text()
    assert "pipeline check, not a benchmark result" in smoke
    assert "Ranked by" in smoke and "rank-col" in smoke


def _page_mentioning(directory: Path, word: str) -> Path:
    return next(p for p in sorted(directory.glob("*.html")) if f"<td>{word} · " in p.read_text())


@pytest.mark.parametrize(
    ("name", "unit", "group"),
    [("memory_bandwidth_gbps", "GB/s", "speed"), ("peak_memory_mib", "MiB", "memory"),
     ("decode_tokens_per_s", "tokens/s", "speed"), ("budget_used_s", "s", "budget"),
     ("parameters", "parameters", "budget"), ("steps_to_target", "steps", "quality"),
     ("kl_mean", "nats", "quality")],
)  # fmt: skip
def test_run_pages_group_metrics(name, unit, group):
    from harness.publish.pages import metric_group

    assert metric_group(name, unit) == group
