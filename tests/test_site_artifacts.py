"""Artifacts are part of a run: stored under the store's artifact root, enclosed (checksummed,
capped) in exported bundles, checked as hostile on import, and shown on the built site."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
from pathlib import Path

import pytest
from conftest import assert_one_line_error, run_cli
from helpers import run_probe

import harness.submit.bundles
from harness.errors import InputError
from harness.submit.bundles import content_hash, validate_bundle
from tasks.probe import ProbeTask

JSONL = b'{"problem": 1, "verdict": "pass"}\n{"problem": 2, "verdict": "fail"}\n'
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><script>alert(1)</script><rect width="40" height="20" fill="teal"/></svg>'  # noqa: E501


def _png() -> bytes:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(2, 1))
    axes.plot([0, 1], [0, 1])
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


PNG = _png()
FILES = {"heatmap.png": PNG, "verdicts.jsonl": JSONL, "scaling.svg": SVG}
TYPES = {"heatmap.png": "image/png", "verdicts.jsonl": "application/jsonl",
         "scaling.svg": "image/svg+xml"}  # fmt: skip


@pytest.fixture
def probe_with_artifacts(monkeypatch):
    """The real probe task, which also writes three files into its run's artifact folder."""
    original = ProbeTask.run

    def run(self, ctx, method):
        original(self, ctx, method)
        ctx.artifact_dir.mkdir(parents=True, exist_ok=True)
        for name, data in FILES.items():
            (ctx.artifact_dir / name).write_bytes(data)
            ctx.save_artifact(name, ctx.artifact_dir / name, TYPES[name])

    monkeypatch.setattr(ProbeTask, "run", run)


def test_a_published_bundle_with_artifacts_shows_them_on_the_site(
    probe_with_artifacts, tmp_path, monkeypatch
):
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    url = f"sqlite:///{tmp_path / 'local' / 'store.db'}"
    (tmp_path / "local").mkdir()
    store, (outcome,) = run_probe(url)
    folder = store.artifact_root / outcome.run_id
    assert folder == tmp_path / "local" / "artifacts" / outcome.run_id
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)
    assert list(work.iterdir()) == []  # nothing in the working directory

    bundles = tmp_path / "bundles"
    run_cli("export", "--db", url, "-o", str(bundles / "a.json"), check=True)
    bundle = json.loads((bundles / "a.json").read_text())
    (run,) = bundle["runs"]
    enclosed = {a["name"]: base64.b64decode(a["content"]) for a in run["artifacts"]}
    assert enclosed == FILES
    assert all("/" not in a["uri"] for a in run["artifacts"])  # no local path published
    for path in folder.iterdir():  # the site must get the files from the bundle alone
        path.unlink()

    out = tmp_path / "site"
    run_cli("site", "build", "--bundles", str(bundles), "--out", str(out), check=True)
    page = (out / "runs" / f"{outcome.run_id}.html").read_text()
    assert "<h2>Artifacts</h2>" in page
    images = re.findall(r'<img src="([^"]+)" alt="([^"]+)"', page)
    shown = {alt: src for src, alt in images}
    assert set(shown) == {"heatmap.png", "scaling.svg"}
    assert (out / "runs" / shown["heatmap.png"]).resolve().read_bytes() == PNG
    # SVG only as a data URI in <img>, where its script never runs; never as a file to open.
    assert shown["scaling.svg"] == "data:image/svg+xml;base64," + base64.b64encode(SVG).decode()
    assert not list(out.rglob("*.svg*")) or all(
        b"<script>" not in p.read_bytes() for p in out.rglob("*.svg")
    )
    (download,) = re.findall(r'<a href="([^"]+)" download>', page)
    assert download.endswith(".jsonl")
    assert (out / "runs" / download).resolve().read_bytes() == JSONL


def _enclosing_bundle(tmp_path: Path) -> dict:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    run_probe(url)
    run_cli("export", "--db", url, "-o", str(tmp_path / "a.json"), check=True)
    return json.loads((tmp_path / "a.json").read_text())


def _resealed(bundle: dict, change) -> dict:
    bundle = copy.deepcopy(bundle)
    change(bundle["runs"][0]["artifacts"][0])
    bundle["sha256"] = content_hash(bundle)
    return bundle


def test_enclosed_artifacts_are_checked_as_hostile(probe_with_artifacts, tmp_path, monkeypatch):
    bundle = _enclosing_bundle(tmp_path)
    other = base64.b64encode(b"planted bytes").decode()

    def planted(artifact):
        artifact["content"] = other

    def consistent_but_big(artifact):
        data = b"x" * 2048
        artifact.update(content=base64.b64encode(data).decode(), size_bytes=len(data),
                        sha256=hashlib.sha256(data).hexdigest())  # fmt: skip

    cases = {
        "do not match its sha256": lambda a: a.update(content=other, size_bytes=13),
        "size_bytes says otherwise": planted,
        "not base64": lambda a: a.update(content="not base64!!"),
    }
    target = tmp_path / "target"
    target.mkdir()
    for message, change in cases.items():
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(_resealed(bundle, change)))
        result = run_cli("import", "--db", f"sqlite:///{target / 'store.db'}", str(path))
        assert_one_line_error(result, 2, message)
    monkeypatch.setattr(harness.submit.bundles, "ARTIFACT_MAX_BYTES", 1024)
    with pytest.raises(InputError, match="exceed the size cap"):
        validate_bundle(_resealed(bundle, consistent_but_big), Path("big.json"))
    assert not (target / "artifacts").exists()  # nothing written for a rejected bundle
