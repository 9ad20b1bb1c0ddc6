"""The environment a run happened in, as a flat dict for bug reports.

Imports torch and transformers to read their versions, so it is only called
by `gaverify env` and by runs (which import them anyway).
"""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata

from gaverify import allocator

_PACKAGES = ["torch", "transformers", "accelerate", "trl", "pydantic", "typer", "rich", "pyyaml"]


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def gaverify_version() -> str:
    """The installed gaverify's version (pyproject.toml is its one source)."""
    return _version("gaverify")


def collect() -> dict[str, str]:
    """Versions of gaverify, Python and the libraries it runs, the platform,
    and the accelerator torch sees."""
    import torch

    info = {
        "gaverify": gaverify_version(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu count": str(os.cpu_count()),
    }
    info.update({name: _version(name) for name in _PACKAGES})
    info["torch build"] = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU only"
    if torch.cuda.is_available():
        names = {torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())}
        info["gpu"] = f"{torch.cuda.device_count()} x {', '.join(sorted(names))}"
    else:
        info["gpu"] = "none visible to torch"
    info["torch threads"] = str(torch.get_num_threads())
    info["allocator"] = allocator.describe()
    return info
