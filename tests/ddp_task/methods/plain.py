"""Plain SGD."""

from tasks.base import MethodRun

HYPERPARAMETERS: dict = {"lr": 0.1}


def learning_rate(run: MethodRun) -> float:
    return run.hyperparameters["lr"]
