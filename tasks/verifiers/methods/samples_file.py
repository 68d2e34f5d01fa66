"""Samples file: scores the programs of an EvalPlus-format JSONL file (`--set samples=FILE`).

The task reads the file itself (see `tasks/verifiers/samples.py` for the format and what
happens to bad lines), so this method generates nothing; it is chosen automatically when the
`samples` setting is given.
"""

from tasks.base import MethodRun

NAME = "samples-file"
DESCRIPTION = "programs read from an EvalPlus-format JSONL samples file"
HYPERPARAMETERS: dict = {}
READS_SAMPLES_FILE = True


def generate(problems, n, seed, run: MethodRun):
    raise RuntimeError(
        "the samples-file method reads --set samples=FILE.jsonl; it generates nothing"
    )
