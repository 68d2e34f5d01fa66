"""EvalPlus results: imports the per-sample statuses of an EvalPlus `eval_results.json`
(`--set samples=eval_results.json`) instead of running programs, so the paper's figures can be
reproduced for any model whose EvalPlus results are published.

Nothing is executed: the verdicts are EvalPlus's own (base: base_status; strong: base and plus
status both "pass"), as trustworthy as the file. The file's content hash is part of the
task-spec hash, and a file that lacks problems of the profile is refused as a samples file is.
Chosen automatically for a `samples` setting that ends in `.json`.
"""

from tasks.base import MethodRun

NAME = "evalplus-results"
DESCRIPTION = "per-sample statuses imported from an EvalPlus eval_results.json (not re-run)"
HYPERPARAMETERS: dict = {}
READS_SAMPLES_FILE = True
IMPORTS_STATUSES = True


def generate(problems, n, seed, run: MethodRun):
    raise RuntimeError("the evalplus-results method imports statuses; it generates nothing")
