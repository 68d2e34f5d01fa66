"""Typed method interfaces (`tasks/<task>/interface.py`): printed by `budgetbench tasks TASK`,
enough to write a method from, and enforced before any run starts with a one-line error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import FAST_PROBE, assert_one_line_error, run_cli

from harness.errors import InputError
from harness.registry import load_task, task_names
from harness.run.methods import load_method

# Written from `budgetbench tasks large-batch` and the interface's docstrings alone: an optimizer
# none of the reference methods has (Lion, Chen et al. 2023), defined in the method file itself.
LION = '''"""Lion (Chen et al. 2023): the sign of an interpolation of momentum and gradient,
decoupled weight decay on the weights only, linear warmup over a fixed number of examples."""

import torch

from tasks.base import MethodRun

HYPERPARAMETERS = {
    "peak_rate_range": [1e-4, 3e-3],
    "betas": [0.9, 0.99],
    "weight_decay": 0.1,
    "warmup_examples": 256,
    "grad_clip": 1.0,
}


class Lion(torch.optim.Optimizer):
    def __init__(self, groups, lr, betas):
        super().__init__(groups, {"lr": lr, "betas": tuple(betas), "weight_decay": 0.0})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                momentum = self.state[p].setdefault("momentum", torch.zeros_like(p))
                p.mul_(1 - group["lr"] * group["weight_decay"])
                update = momentum.mul(beta1).add(p.grad, alpha=1 - beta1).sign_()
                p.add_(update, alpha=-group["lr"])
                momentum.mul_(beta2).add_(p.grad, alpha=1 - beta2)


def configure_optimizer(parameter_groups, peak_rate, batch_size, run: MethodRun):
    decay = run.hyperparameters["weight_decay"]
    groups = [
        {"params": g["params"], "weight_decay": decay if g["name"] == "weights" else 0.0}
        for g in parameter_groups
    ]
    return Lion(groups, lr=peak_rate, betas=run.hyperparameters["betas"])


def learning_rate(step, batch_size, run: MethodRun):
    warmup_steps = max(1, -(-run.hyperparameters["warmup_examples"] // batch_size))
    return min(1.0, (step + 1) / warmup_steps)
'''

# test_large_batch.py's sweep in seconds: a capped corpus, a tiny encoder, three batch sizes.
QUICK_SWEEP = (
    "batch_sizes=[8,16,32]", "micro_batch=8", "max_steps=40", "max_examples=640",
    "hidden_size=32", "num_layers=1", "intermediate_size=64", "eval_sequences=32",
    "vocab_size=512", "max_corpus_characters=300000", "target_loss=5.9", "rate_trials=2",
    "seeds=2",
)  # fmt: skip

PROBE = """
import torch.nn.functional as F
HYPERPARAMETERS = {"block": 64}

def matmul(a, b, run):
    run.state["matmuls"] = run.state.get("matmuls", 0) + 1
    return a @ b

def attention(q, k, v, run):
    if not run.state.get("matmuls"):  # matmul runs first, on the same `run`
        raise RuntimeError("run.state lost what matmul kept")
    return F.scaled_dot_product_attention(q, k, v)

def copy(dst, src, run):
    dst.copy_(src)
"""


def write(tmp_path: Path, text: str, name: str = "method.py") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("task", task_names())
def test_every_reference_method_fits_its_tasks_interface(task):
    task_cls = load_task(task)
    for reference in task_cls.reference_methods:
        method = load_method(task_cls, reference)
        assert set(method.constants) == {c.name for c in task_cls.method_interface.constants}


@pytest.mark.parametrize("task", task_names())
def test_tasks_task_prints_the_stubs_constants_and_reserved_hyperparameters(task):
    result = run_cli("tasks", task, check=True)
    interface = load_task(task).method_interface
    for function in interface.functions:
        assert f"  {function.name}(" in result.stdout
        assert function.doc.split()[0] in result.stdout
    for constant in interface.constants:
        assert f"  {constant.name}: {constant.annotation}" in result.stdout
    for key, rule in interface.reserved.items():
        assert f"  {key}: {'must not be set' if rule.forbidden else rule.describe()}" in (
            result.stdout
        )
    assert "run: MethodRun" in result.stdout and "state: dict[str, Any]" in result.stdout


def test_tasks_cramming_prints_mask_rate_bounds_and_the_optional_data_order():
    text = run_cli("tasks", "cramming", check=True).stdout
    assert "mask_rate: between 0.1 and 0.4  [required]" in text
    assert "precision: 'fp32', 'bf16' or 'auto'  [optional, default 'fp32']" in text
    assert "compile: True or False  [optional, default False]" in text
    assert "grad_clip: a positive number or None  [optional, default None]" in text
    assert "data_order(" in text and "  [optional]" in text
    detail = json.loads(run_cli("tasks", "cramming", "--json", check=True).stdout)
    (data_order,) = [f for f in detail["functions"] if f["name"] == "data_order"]
    assert data_order["optional"] and data_order["parameters"][-1] == "run"


def test_tasks_with_an_unknown_task_is_one_line():
    assert_one_line_error(run_cli("tasks", "nosuch"), 2, "unknown task 'nosuch'")


def test_run_state_is_shared_by_a_runs_calls_and_overrides_reach_the_run(tmp_path):
    path = write(tmp_path, PROBE)
    db = tmp_path / "store.db"
    result = run_cli(
        "run", "probe", "--method", str(path), "--set", "hp.block=16", "--db", str(db),
        *FAST_PROBE,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    method = load_method(load_task("probe"), str(path), {"block": 16})
    assert method.new_run(seed=3, device="cpu").hyperparameters == {"block": 16}
    assert method.module.HYPERPARAMETERS == {"block": 64}


def test_a_new_large_batch_optimizer_from_the_printed_interface_runs_and_is_submitted(tmp_path):
    printed = run_cli("tasks", "large-batch", check=True).stdout
    # What LION relies on is all in the printed interface.
    for needed in (
        "configure_optimizer(", "parameter_groups: list[dict[str, Any]]", "peak_rate: float",
        "batch_size: int", "-> torch.optim.Optimizer", '{"name": "weights"',
        "learning_rate(step: int, batch_size: int, run: MethodRun) -> float",
        "peak_rate_range: a list of 2 positive numbers  [required]",
        "grad_clip: a positive number or None", "hyperparameters: Mapping[str, Any]",
    ):  # fmt: skip
        assert needed in printed, needed
    method = write(tmp_path, LION, "lion.py")
    env = {"BUDGETBENCH_CACHE_DIR": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    sweep = [part for setting in QUICK_SWEEP for part in ("--set", setting)]
    output = tmp_path / "lion.submission.json"
    result = run_cli(
        "submit", "large-batch", "--method", str(method), "--division", "open",
        "--description", "Lion; the quick sweep of the tests", *sweep,
        "--db", str(tmp_path / "store.db"), "-o", str(output), env=env, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    submission = json.loads(output.read_text())
    assert submission["method"]["name"] == "lion"
    assert [file["path"] for file in submission["method"]["files"]] == ["lion.py"]
    (run,) = submission["bundle"]["runs"]
    assert run["status"] == "succeeded" and run["gate_passed"]
    verified = run_cli("verify", str(output), env=env)
    assert verified.returncode == 0, verified.stdout + verified.stderr


GOOD_PROBE = PROBE.replace('HYPERPARAMETERS = {"block": 64}', "HYPERPARAMETERS = {}")
GOOD_QUANT = (
    "BITS_PER_WEIGHT = 4.0\n\ndef quantize(model, calibration, modules, run):\n    return model\n"
)
GOOD_VERIFIERS = "def generate(problems, n, seed, run):\n    return {}\n"
GOOD_LARGE_BATCH = LION


@pytest.mark.parametrize(
    ("task", "text", "message"),
    [
        (
            "probe",
            GOOD_PROBE.replace("def copy", "def not_copy"),
            "missing function copy(dst, src, run)",
        ),
        (
            "probe",
            GOOD_PROBE.replace("def matmul(a, b, run):", "def matmul(a, b):"),
            "matmul(a, b) does not accept the arguments (a, b, run)",
        ),
        (  # the task may pass arguments by name: the stub's names are part of the interface
            "probe",
            GOOD_PROBE.replace("def copy(dst, src, run):", "def copy(target, source, run):"),
            "does not accept the arguments (dst, src, run)",
        ),
        (
            "verifiers",
            GOOD_VERIFIERS + "\ndef verify(problem, program):\n    return True\n",
            "verify(problem, program) does not accept the arguments (problem, program, run)",
        ),
        ("quant", GOOD_QUANT.replace("4.0", '"4"'), "BITS_PER_WEIGHT must be float, got str"),
        ("quant", GOOD_QUANT.replace("BITS_PER_WEIGHT = 4.0", ""), "must define BITS_PER_WEIGHT"),
        ("verifiers", "SYNTHETIC = 1\n" + GOOD_VERIFIERS, "SYNTHETIC must be bool, got int"),
        ("verifiers", "NAME = 7\n" + GOOD_VERIFIERS, "NAME must be str, got int"),
        (
            "large-batch",
            GOOD_LARGE_BATCH.replace('"grad_clip": 1.0', '"grad_clip": -1.0'),
            "HYPERPARAMETERS['grad_clip'] must be a positive number or None, got -1.0",
        ),
        (
            "large-batch",
            GOOD_LARGE_BATCH.replace("[1e-4, 3e-3]", "[1e-4]"),
            "HYPERPARAMETERS['peak_rate_range'] must be a list of 2 positive numbers",
        ),
        (
            "large-batch",
            GOOD_LARGE_BATCH.replace('"grad_clip": 1.0', '"mask_rate": 0.2'),
            "HYPERPARAMETERS['mask_rate'] must not be set",
        ),
        (
            "large-batch",
            GOOD_LARGE_BATCH.replace('"peak_rate_range": [1e-4, 3e-3],', ""),
            "HYPERPARAMETERS['peak_rate_range'] is required",
        ),
        (  # a function reading the module's dict would silently miss --set hp.NAME=VALUE
            "large-batch",
            GOOD_LARGE_BATCH.replace('run.hyperparameters["betas"]', 'HYPERPARAMETERS["betas"]'),
            "configure_optimizer reads the module's HYPERPARAMETERS",
        ),
    ],
)
def test_a_method_breaking_the_interface_is_refused_naming_file_and_rule(
    tmp_path, task, text, message
):
    path = write(tmp_path, text)
    with pytest.raises(InputError) as excinfo:
        load_method(load_task(task), str(path))
    assert str(path) in str(excinfo.value) and "\n" not in str(excinfo.value)
    assert message in str(excinfo.value)


def test_an_override_outside_the_bounds_is_refused_before_anything_runs(tmp_path):
    db = tmp_path / "store.db"
    result = run_cli(
        "run", "cramming", "--method", "crammed-bert-tiny", "--set", "hp.mask_rate=0.9",
        "--db", str(db),
    )  # fmt: skip
    assert_one_line_error(result, 2, "HYPERPARAMETERS['mask_rate'] must be between 0.1 and 0.4")
    assert not db.exists()
    result = run_cli(
        "run", "cramming", "--method", "crammed-bert-tiny", "--set", "hp.precision=fp16",
        "--db", str(db),
    )  # fmt: skip
    assert_one_line_error(result, 2, "must be 'fp32', 'bf16' or 'auto', got 'fp16'")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD_PROBE.replace("def attention", "def not_attention"), "missing function attention"),
        (
            GOOD_PROBE.replace("def matmul(a, b, run):", "def matmul(a, b, c, run):"),
            "matmul(a, b, c",
        ),
        ('NAME = ["x"]\n' + GOOD_PROBE, "NAME must be str, got list"),
    ],
)
def test_the_cli_refuses_a_broken_method_with_one_line_and_exit_2(tmp_path, text, message):
    path = write(tmp_path, text)
    db = tmp_path / "store.db"
    result = run_cli("run", "probe", "--method", str(path), "--db", str(db), *FAST_PROBE)
    assert_one_line_error(result, 2, message)
    assert not db.exists()
