"""budgetbench as a library: run benchmark tasks and read stored runs from Python.

    import budgetbench

    runs = budgetbench.run("probe", profile="smoke", seeds=2, settings={"repeats": 5},
                           db="my.db")
    for run in runs:
        print(run.id[:8], run.status, run.measurements["matmul_fp32_tflops"])
    budgetbench.export("probe.json", db="my.db", task="probe")

The functions are those the `budgetbench` CLI calls (see `harness.api`); bad input raises
`budgetbench.InputError` before any run starts.
"""

from harness import __version__
from harness.api import Run, export, run, runs, show
from harness.errors import InputError

__all__ = ["InputError", "Run", "__version__", "export", "run", "runs", "show"]
