"""The method interface of the test-only task `ddp-check`: one learning rate."""

from __future__ import annotations

from tasks.base import MethodRun


def learning_rate(run: MethodRun) -> float:
    """The SGD learning rate of the one DDP step."""
