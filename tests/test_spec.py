"""Suite specs and profile resolution: typos and wrong types fail before anything runs."""

from __future__ import annotations

import pytest

from harness.errors import InputError
from harness.paths import site_root, suite_root
from harness.registry import load_task, task_names
from harness.spec import load_spec, parse_overrides, resolve_config, spec_task_names, suite_versions
from tasks.probe import ProbeTask


def test_suite_and_site_directories_are_found():
    assert (suite_root() / "v1" / "probe.toml").is_file()
    assert site_root().is_dir()


@pytest.mark.parametrize("version", suite_versions())
def test_every_shipped_profile_resolves_for_its_task(version):
    for name in spec_task_names(version):
        assert name in task_names(), f"suite {version} has a spec for uninstalled task {name}"
        task_cls = load_task(name)
        spec = load_spec(name, version)
        for profile in spec.profiles:
            resolved = resolve_config(task_cls, spec, profile)
            assert resolved.settings and len(resolved.task_spec_hash) == 64
            assert set(spec.suite_methods.get(profile, ())) <= set(task_cls.reference_methods)


def test_overrides_are_typed_and_split_into_settings_and_hyperparameters():
    settings, hyperparameters = parse_overrides(
        [
            "repeats=3",
            "min_repeat_s=1e-3",
            'matmul_dtypes=["float32"]',
            "name=plain text",
            "hp.lr=0.5",
        ]
    )
    assert settings == {
        "repeats": 3,
        "min_repeat_s": 0.001,
        "matmul_dtypes": ["float32"],
        "name": "plain text",
    }
    assert hyperparameters == {"lr": 0.5}


def test_override_without_equals_is_rejected():
    with pytest.raises(InputError, match="key=value"):
        parse_overrides(["repeats"])


def test_override_changes_the_task_spec_hash_and_int_becomes_float():
    spec = load_spec("probe")
    base = resolve_config(ProbeTask, spec, "smoke")
    changed = resolve_config(ProbeTask, spec, "smoke", {"min_repeat_s": 1})
    assert changed.settings["min_repeat_s"] == 1.0 and isinstance(
        changed.settings["min_repeat_s"], float
    )
    assert changed.task_spec_hash != base.task_spec_hash
    assert resolve_config(ProbeTask, spec, "smoke").task_spec_hash == base.task_spec_hash


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"repeat": 3}, "has no setting 'repeat'"),
        ({"repeats": "many"}, "expected int"),
        ({"repeats": True}, "expected int"),
        ({"matmul_dtypes": "float32"}, "expected a list"),
        ({"matmul_dtypes": ["float64"]}, "unknown dtype 'float64'"),
        ({"repeats": 0}, "repeats = 0 is outside its bounds 1 .. "),
    ],
)
def test_bad_settings_are_rejected(overrides, message):
    with pytest.raises(InputError, match=message):
        resolve_config(ProbeTask, load_spec("probe"), "smoke", overrides)


def test_unknown_profile_lists_the_known_ones():
    with pytest.raises(InputError, match="profiles: full, smoke, standard"):
        resolve_config(ProbeTask, load_spec("probe"), "huge")


def test_unknown_task_lists_known_tasks():
    with pytest.raises(InputError, match=r"known tasks: .*probe"):
        load_task("no-such-task")


def test_suite_methods_pick_what_suite_run_runs_and_stay_out_of_the_hash(tmp_path, monkeypatch):
    import shutil
    import subprocess
    import sys

    from harness.paths import suite_root

    shipped = load_spec("probe")
    suite = tmp_path / "suite" / "v1"
    suite.mkdir(parents=True)
    for spec in (suite_root() / "v1").glob("*.toml"):
        shutil.copy(spec, suite / spec.name)
    text = (suite / "probe.toml").read_text()
    (suite / "probe.toml").write_text(
        text.replace("[profiles.smoke]\n", "[profiles.smoke]\nsuite_methods = ['eager']\n")
    )
    monkeypatch.setenv("BUDGETBENCH_SUITE_DIR", str(tmp_path / "suite"))
    spec = load_spec("probe")
    assert spec.suite_methods == {"smoke": ("eager",)}
    assert resolve_config(ProbeTask, spec, "smoke").task_spec_hash == (
        resolve_config(ProbeTask, shipped, "smoke").task_spec_hash
    )

    (suite / "probe.toml").write_text(
        text.replace("[profiles.smoke]\n", "[profiles.smoke]\nsuite_methods = ['nope']\n")
    )
    result = subprocess.run(
        [sys.executable, "-m", "harness", "suite", "run", "--task", "probe",
         "--db", str(tmp_path / "bb.db")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 2
    assert "suite_methods of profile 'smoke' names nope" in result.stderr
