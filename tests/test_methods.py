"""Loading submitted methods: every broken file fails before anything runs, with one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import FAST_PROBE, assert_one_line_error, run_cli

from harness.errors import InputError
from harness.run.methods import load_method
from tasks.probe import ProbeTask

GOOD = """
import torch
HYPERPARAMETERS = {"scale": 1.0}

def matmul(a, b, run):
    return a @ b

def attention(q, k, v, run):
    return torch.nn.functional.scaled_dot_product_attention(q, k, v)

def copy(dst, src, run):
    dst.copy_(src)
"""


def write(tmp_path: Path, text: str, name: str = "method.py") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_reference_method_loads_with_name_and_hash():
    method = load_method(ProbeTask, "eager")
    assert method.name == "eager"
    assert method.is_reference
    assert len(method.method_hash) == 64
    assert method.description.startswith("PyTorch eager kernels")


def test_method_file_loads_and_hash_tracks_source_and_hyperparameters(tmp_path):
    path = write(tmp_path, GOOD)
    first = load_method(ProbeTask, str(path))
    assert first.name == "method" and not first.is_reference
    assert load_method(ProbeTask, str(path)).method_hash == first.method_hash
    assert load_method(ProbeTask, str(path), {"scale": 2.0}).method_hash != first.method_hash
    path.write_text(GOOD + "\n# a changed line\n")
    assert load_method(ProbeTask, str(path)).method_hash != first.method_hash


def test_hyperparameter_override_reaches_the_run_and_never_the_module(tmp_path):
    method = load_method(ProbeTask, str(write(tmp_path, GOOD)), {"scale": 3.0})
    assert method.hyperparameters == {"scale": 3.0}
    run = method.new_run(seed=0, device="cpu")
    assert run.hyperparameters == {"scale": 3.0} and run.state == {}
    assert method.module.HYPERPARAMETERS == {"scale": 1.0}  # the module is never written to
    with pytest.raises(TypeError):
        run.hyperparameters["scale"] = 4.0  # type: ignore[index]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            GOOD.replace("def copy(dst, src, run):", "def copy(dst, src, run)"),
            "syntax error on line 11",
        ),
        (
            GOOD.replace("def attention", "def not_attention"),
            "missing function attention(q, k, v, run)",
        ),
        (
            GOOD.replace("def matmul(a, b, run):", "def matmul(a):"),
            "does not accept the arguments (a, b, run)",
        ),
        (
            GOOD.replace("import torch", "import torch\nraise RuntimeError('boom')"),
            "RuntimeError: boom",
        ),
        (
            GOOD.replace("import torch", "import no_such_module_xyz"),
            "No module named 'no_such_module_xyz'",
        ),
        (
            GOOD.replace('HYPERPARAMETERS = {"scale": 1.0}', "HYPERPARAMETERS = [1]"),
            "must be a dict",
        ),
        (GOOD + "\nmatmul = 3\n", "'matmul' is not a function"),
    ],
)
def test_broken_method_file_is_rejected_naming_file_and_problem(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(InputError) as excinfo:
        load_method(ProbeTask, str(path))
    assert str(path) in str(excinfo.value)
    assert message in str(excinfo.value)


def test_unknown_hyperparameter_override_is_rejected(tmp_path):
    with pytest.raises(InputError, match="no hyperparameter 'lr'"):
        load_method(ProbeTask, str(write(tmp_path, GOOD)), {"lr": 0.1})


def test_unknown_method_name_lists_reference_methods():
    with pytest.raises(InputError, match="reference methods: eager"):
        load_method(ProbeTask, "no_such_method")


def test_missing_method_file_is_rejected(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_method(ProbeTask, str(tmp_path / "absent.py"))


def test_importable_module_is_a_method(tmp_path, monkeypatch):
    write(tmp_path, GOOD, "my_probe_method.py")
    monkeypatch.syspath_prepend(str(tmp_path))
    method = load_method(ProbeTask, "my_probe_method")
    assert method.name == "my-probe-method"
    assert method.source_files == ((tmp_path / "my_probe_method.py").resolve(),)


def test_cli_bad_method_file_exits_2_before_touching_the_database(tmp_path):
    path = write(tmp_path, GOOD.replace("def copy(dst, src, run):", "def copy(dst, src, run)"))
    db = tmp_path / "store.db"
    result = run_cli("run", "probe", "--method", str(path), "--db", str(db))
    assert_one_line_error(result, 2, f"method file {path}: syntax error on line 11")
    assert not db.exists()


def test_the_readme_example_method_runs(tmp_path):
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    example = (
        readme.split("## Writing a method", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    )
    path = write(tmp_path, example, "blocked.py")
    db = tmp_path / "store.db"
    result = run_cli(
        "run", "probe", "--method", str(path), "--set", "hp.block=16", "--db", str(db), *FAST_PROBE
    )
    assert result.returncode == 0, result.stderr
    assert "✓ probe / blocked / smoke / seed 0: succeeded" in result.stderr
