"""Where a result was measured: the machine, the accelerator, the library versions and the commit.

One helper for every place that records its environment: the study's run records and the
benchmarks' JSON files.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from typing import Any

VERSIONED_PACKAGES = ("torch", "transformers", "datasets", "ner_imbalance")


def cpu_model_name() -> str:
    """The processor's model name as `lscpu` prints it (from /proc/cpuinfo), else `platform`'s guess."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine_info(device: str = "cpu") -> dict[str, Any]:
    """Processor, accelerator, threads and the versions of torch and transformers.

    `device` is the device type a measurement ran on (`cpu`, `cuda`); `gpu` names the CUDA
    device when it is `cuda`, else None.
    """
    import torch
    import transformers

    return {
        "platform": platform.platform(),
        "cpu": cpu_model_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "gpu": torch.cuda.get_device_name() if device == "cuda" else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }


def device_label(machine: dict[str, Any]) -> str | None:
    """The accelerator of a `machine_info` (or an older record's `machine`): the GPU's name, else the device."""
    return machine.get("gpu") or machine.get("device")


def library_versions() -> dict[str, str | None]:
    """Python's version and the installed versions of the packages a result depends on."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for package in VERSIONED_PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def git_commit() -> str | None:
    """`git rev-parse HEAD` of the working directory, or None outside a checkout."""
    try:
        completed = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return completed.stdout.strip() or None
