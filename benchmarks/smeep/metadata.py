"""Per-run metadata: the hardware (from /proc), the smeep version and the exact command line."""

from __future__ import annotations

import os
import platform
import shlex
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any


def smeep_version() -> str:
    try:
        return metadata.version("smeep")
    except metadata.PackageNotFoundError:
        from smeep import __version__

        return __version__


def hardware(proc: Path = Path("/proc")) -> dict[str, Any]:
    cpu_model = None
    try:
        for line in (proc / "cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                cpu_model = value.strip()
                if key.strip() == "model name":
                    break
    except OSError:
        pass
    ram_mib = None
    try:
        for line in (proc / "meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_mib = int(line.split()[1]) // 1024
    except OSError:
        pass
    return {
        "cpu_model": cpu_model,
        "cpu_cores": os.cpu_count(),
        "ram_mib": ram_mib,
        "machine": platform.machine(),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def base(argv: list[str] | None = None) -> dict[str, Any]:
    return {
        "timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "smeep_version": smeep_version(),
        "command": shlex.join(["smeep", *(sys.argv[1:] if argv is None else argv)]),
        "hardware": hardware(),
    }
