"""Plain SGD."""

HYPERPARAMETERS: dict = {"lr": 0.1}


def learning_rate() -> float:
    return HYPERPARAMETERS["lr"]
