"""The machine fingerprint and its comparability keys."""

from __future__ import annotations

import pytest
import torch
from conftest import run_cli

from harness.run.machine import MachineFingerprint, collect_fingerprint


def test_fingerprint_is_stable_on_one_machine():
    first, second = collect_fingerprint(), collect_fingerprint()
    assert (first.id, first.hardware_key, first.software_key) == (
        second.id,
        second.hardware_key,
        second.software_key,
    )


def test_a_software_update_changes_the_software_key_only():
    before = collect_fingerprint()
    software = {**before.software, "packages": {**before.software["packages"], "torch": "99.0"}}
    after = MachineFingerprint(hardware=before.hardware, software=software)
    assert after.hardware_key == before.hardware_key
    assert after.software_key != before.software_key and after.id != before.id


def test_a_different_gpu_changes_the_hardware_key_and_label():
    before = collect_fingerprint()
    # Not a GPU this machine could have, so the test also holds on a machine with an H100.
    gpu = {
        "name": "NVIDIA A100-SXM4-40GB",
        "memory_gib": 39,
        "compute_capability": "8.0",
        "multiprocessors": 108,
    }
    after = MachineFingerprint(
        hardware={**before.hardware, "gpus": [gpu]}, software=before.software
    )
    assert after.hardware_key != before.hardware_key
    assert after.hardware_label.endswith("| 1x NVIDIA A100-SXM4-40GB")


def test_fingerprint_records_cpu_ram_and_versions():
    fingerprint = collect_fingerprint()
    assert fingerprint.hardware["cpu_model"] and fingerprint.hardware["ram_gib"] > 0
    assert fingerprint.software["python"] and fingerprint.software["packages"]["torch"]


def test_a_machine_without_a_gpu_has_no_cuda_fields():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    fingerprint = collect_fingerprint()
    assert fingerprint.hardware["gpus"] == []
    assert not {"cuda", "cudnn", "gpu_driver"} & set(fingerprint.software)
    shown = run_cli("machine", check=True).stdout
    assert "cuda" not in shown.replace(fingerprint.software["packages"]["torch"], "")
    assert "gpu driver" not in shown
