"""psutil sampling of the host for the `host` check (only the daemon imports psutil)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import psutil


class HostSampler:
    """Keeps psutil's CPU counters between samples, so cpu_percent covers the interval since the last one."""

    def __init__(self, disk_path: Path) -> None:
        self.disk_path = disk_path
        psutil.cpu_percent(interval=None)  # prime: the first reading is otherwise meaningless

    def sample(self) -> dict[str, Any]:
        memory = psutil.virtual_memory()
        disk = psutil.disk_usage(str(self.disk_path))
        return {
            "cpu_percent": psutil.cpu_percent(interval=None),
            "memory_percent": memory.percent,
            "memory_used_bytes": memory.total - memory.available,
            "memory_total_bytes": memory.total,
            "disk_percent": disk.percent,
            "disk_used_bytes": disk.used,
            "disk_total_bytes": disk.total,
            "load1": os.getloadavg()[0],
        }
