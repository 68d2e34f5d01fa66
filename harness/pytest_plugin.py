"""budgetbench's pytest plugin (entry point `pytest11`): it adds budgetbench's machine
fingerprint to pytest-benchmark's `machine_info`, so `budgetbench import --format
pytest-benchmark` files the results under the same machine as budgetbench's own runs there.
Without pytest-benchmark the hook is never called and nothing is imported."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.hookimpl(optionalhook=True)  # pytest-benchmark's hook: unknown without it, and fine
def pytest_benchmark_update_machine_info(config: Any, machine_info: dict[str, Any]) -> None:
    from harness.run.machine import collect_fingerprint

    machine_info["budgetbench"] = collect_fingerprint().as_dict()
