"""Cross-check: the task's per-sample verdicts against `evalplus.evaluate` on the same samples.

    python -m tasks.verifiers.crosscheck SAMPLES.jsonl[.gz] --data-dir DIR [--evalplus-results
        JSON] [--verdicts JSONL] [--workers 2] [--min-agreement 0.995]

Runs what is not given: `evalplus.evaluate` (the `evalplus` test extra; HumanEval+ from
DIR/code/HumanEvalPlus.jsonl.gz through its HUMANEVAL_OVERRIDE_PATH, nothing downloaded) and
`budgetbench run verifiers --profile full` on the same file, then compares per sample: "base" is
EvalPlus's base status against the task's weak verdict, "plus" EvalPlus's base + extra status
(base == plus == pass, what its "humaneval+" pass@k counts) against the task's strong verdict.
Prints both agreements, both pass@1s and every disagreement with each side's reason; exits 1
when an agreement is below `--min-agreement`, 2 on bad input.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

PLUS_FILE = "code/HumanEvalPlus.jsonl.gz"


@dataclass(frozen=True)
class Sample:
    """One sample's statuses as one side saw them."""

    base: bool
    plus: bool
    reason: str


@dataclass
class Agreement:
    samples: int = 0
    base_agree: int = 0
    plus_agree: int = 0
    disagreements: list[str] = field(default_factory=list)
    pass_at_1: dict[str, float] = field(default_factory=dict)

    def share(self, which: str) -> float:
        agree = self.base_agree if which == "base" else self.plus_agree
        return agree / self.samples if self.samples else 0.0


def read_evalplus(path: Path) -> dict[tuple[str, int], Sample]:
    """Per (task_id, sample index) statuses from an EvalPlus `eval_results.json`."""
    data = json.loads(path.read_text())
    result = {}
    for task_id, records in data["eval"].items():
        for index, record in enumerate(records):
            base, plus = record["base_status"], record.get("plus_status")
            reason = f"base {base}, plus {plus}"
            if record.get("base_fail_tests") and base != "pass":
                reason += f" (base failing input {str(record['base_fail_tests'][0])[:60]})"
            result[task_id, index] = Sample(base == "pass", base == plus == "pass", reason)
    return result


def read_verdicts(path: Path) -> dict[tuple[str, int], Sample]:
    """Per (task_id, sample index) verdicts from the task's `verdicts.jsonl` artifact."""
    result = {}
    with path.open() as lines:
        for line in lines:
            record = json.loads(line)
            reason = record["outcome"] + (f" ({record['detail']})" if record["detail"] else "")
            result[record["task_id"], record["sample"]] = Sample(
                record["weak"], record["strong"], reason
            )
    return result


def compare(
    ours: dict[tuple[str, int], Sample], theirs: dict[tuple[str, int], Sample]
) -> Agreement:
    """Agreement over EvalPlus's samples; a sample the task did not score counts as a
    disagreement (its reason says so)."""
    agreement = Agreement()
    for key in sorted(theirs, key=lambda k: (_number(k[0]), k[1])):
        evalplus = theirs[key]
        task = ours.get(key, Sample(False, False, "not scored by the task"))
        agreement.samples += 1
        agreement.base_agree += task.base == evalplus.base
        agreement.plus_agree += task.plus == evalplus.plus
        if task.base != evalplus.base or task.plus != evalplus.plus:
            agreement.disagreements.append(
                f"{key[0]} #{key[1]}: task weak={task.base} strong={task.plus} [{task.reason}]"
                f" vs EvalPlus base={evalplus.base} plus={evalplus.plus} [{evalplus.reason}]"
            )
    for side, samples in (("task", ours), ("evalplus", theirs)):
        for which in ("base", "plus"):
            agreement.pass_at_1[f"{side}_{which}"] = _pass_at_1(samples, which)
    return agreement


def report(agreement: Agreement, name: str) -> str:
    """Both agreements, both pass@1s and every disagreement, one per line."""
    lines = [f"samples: {agreement.samples} ({name})"]
    for which in ("base", "plus"):
        lines.append(
            f"{which}: agreement {agreement.share(which):.4f}; pass@1 task"
            f" {agreement.pass_at_1['task_' + which]:.4f}, EvalPlus"
            f" {agreement.pass_at_1['evalplus_' + which]:.4f}"
        )
    lines.append(f"disagreements: {len(agreement.disagreements)}")
    lines += ["  " + line for line in agreement.disagreements]
    return "\n".join(lines)


def _pass_at_1(samples: dict[tuple[str, int], Sample], which: str) -> float:
    """Mean over tasks of the share of passing samples (pass@1, as EvalPlus averages it)."""
    per_task: dict[str, list[bool]] = {}
    for (task_id, _), sample in samples.items():
        per_task.setdefault(task_id, []).append(sample.base if which == "base" else sample.plus)
    shares = [sum(v) / len(v) for v in per_task.values()]
    return sum(shares) / len(shares) if shares else 0.0


def _number(task_id: str) -> int:
    tail = task_id.rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def run_evalplus(
    samples: Path, data_dir: Path, workers: int, out_dir: Path, cache_dir: Path
) -> Path:
    """`evalplus.evaluate` on a plain-JSONL copy of `samples` (it takes `.jsonl` only), with its
    ground truth (expected outputs and the canonical solution's times) cached in `cache_dir`."""
    plain = out_dir / "samples.jsonl"
    opener = gzip.open if samples.suffix == ".gz" else open
    with opener(samples, "rb") as source, plain.open("wb") as target:
        target.write(source.read())
    env = dict(os.environ)
    env["HUMANEVAL_OVERRIDE_PATH"] = str(data_dir / PLUS_FILE)
    env["XDG_CACHE_HOME"] = str(cache_dir / "evalplus")
    code = (
        "from evalplus.evaluate import evaluate;"
        f"evaluate('humaneval', samples={str(plain)!r}, parallel={workers})"
    )
    # Its progress bars and "no sample finished in 20 s" warnings (hundreds of KB under load)
    # are shown only when it fails.
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=out_dir, capture_output=True, text=True
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        raise subprocess.CalledProcessError(done.returncode, "evalplus.evaluate")
    return out_dir / "samples_eval_results.json"


def budgetbench_json(*arguments: str, env: dict[str, str] | None = None) -> Any:
    """What the `budgetbench` CLI (installed beside this interpreter) prints with `--json`: a task
    reaches the harness and its store only through the CLI. Its errors go to stderr as they are;
    a non-zero exit raises `subprocess.CalledProcessError`."""
    command = [str(Path(sys.executable).parent / "budgetbench"), *arguments, "--json"]
    printed = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True, env=env)
    return json.loads(printed.stdout)


def run_task(samples: Path, data_dir: Path, workers: int, out_dir: Path, cache_dir: Path) -> Path:
    """`budgetbench run verifiers --profile full` on `samples` (its test suites, the canonical
    solution's outputs and times, cached in `cache_dir`); returns its verdicts.jsonl."""
    database = str(out_dir / "crosscheck.db")
    env = {**os.environ, "BUDGETBENCH_CACHE_DIR": str(cache_dir / "budgetbench")}
    (outcome,) = budgetbench_json(
        "run", "verifiers", "--profile", "full", "--set", f"samples={samples}",
        "--set", f"workers={workers}", "--data-dir", str(data_dir), "--db", database, env=env,
    )  # fmt: skip
    run = budgetbench_json("show", outcome["run_id"], "--db", database, env=env)
    (uri,) = [artifact["uri"] for artifact in run["artifacts"] if artifact["name"] == "verdicts"]
    return Path(urlparse(uri).path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("samples", type=Path)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--evalplus-results", type=Path)
    parser.add_argument("--verdicts", type=Path)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--min-agreement", type=float, default=0.995)
    args = parser.parse_args(argv)
    # Both sides run in scratch directories: relative paths (CI passes ../shared/data) must not
    # change meaning there.
    args.samples, args.data_dir = args.samples.resolve(), args.data_dir.resolve()
    if not args.samples.is_file() or not (args.data_dir / PLUS_FILE).is_file():
        print(f"error: need {args.samples} and {args.data_dir / PLUS_FILE}", file=sys.stderr)
        return 2
    # Both sides start cold (an empty cache in the scratch directory): each computes its ground
    # truth (the canonical solution's outputs and times) inside its timed run.
    with tempfile.TemporaryDirectory(prefix="bb-crosscheck-") as scratch:
        timings = {}
        cache = Path(scratch) / "cache"
        started = time.perf_counter()
        theirs_path = args.evalplus_results or run_evalplus(
            args.samples, args.data_dir, args.workers, Path(scratch), cache
        )
        timings["evalplus_s"] = time.perf_counter() - started
        started = time.perf_counter()
        ours_path = args.verdicts or run_task(
            args.samples, args.data_dir, args.workers, Path(scratch), cache
        )
        timings["task_s"] = time.perf_counter() - started
        agreement = compare(read_verdicts(ours_path), read_evalplus(theirs_path))
    print(report(agreement, args.samples.name))
    ran = {k: round(v, 1) for k, v in timings.items()}
    print(f"wall seconds, both cold (0 where given as a file): {ran}")
    low = min(agreement.share("base"), agreement.share("plus")) < args.min_agreement
    return 1 if low else 0


if __name__ == "__main__":
    sys.exit(main())
