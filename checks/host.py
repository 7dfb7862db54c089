"""host: CPU, memory and the disk that holds the state directory.

"Is it the model or the box?" is the first on-call question; this answers the box half. The sample is
taken by the daemon (daemon/sources/host.py); this module only judges it.

Config stanza (defaults):

    [host.checks.host]
    interval = "15s"
    cpu_warn = 90.0          # % of all cores, averaged since the previous sample
    cpu_crit = 98.0
    memory_warn = 90.0       # % of RAM in use
    memory_crit = 97.0
    disk_warn = 85.0         # % used on the state directory's filesystem
    disk_crit = 95.0
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from checks.base import CheckResult, CheckSpec, Metric, Status, register, threshold_status, worst


@dataclass(frozen=True)
class HostSettings:
    cpu_warn: float = 90.0
    cpu_crit: float = 98.0
    memory_warn: float = 90.0
    memory_crit: float = 97.0
    disk_warn: float = 85.0
    disk_crit: float = 95.0


def evaluate(inputs: Mapping[str, Any], settings: HostSettings) -> CheckResult:
    """inputs: `host_sample`, a mapping with cpu_percent, memory_percent, memory_used_bytes,
    memory_total_bytes, disk_percent, disk_used_bytes, disk_total_bytes, load1."""
    s = inputs["host_sample"]
    judged = {
        "cpu": (s["cpu_percent"], threshold_status(s["cpu_percent"], settings.cpu_warn, settings.cpu_crit)),
        "memory": (
            s["memory_percent"],
            threshold_status(s["memory_percent"], settings.memory_warn, settings.memory_crit),
        ),
        "disk": (s["disk_percent"], threshold_status(s["disk_percent"], settings.disk_warn, settings.disk_crit)),
    }
    status = worst([st for _, st in judged.values()])
    bad = [f"{name} {value:.0f}%" for name, (value, st) in judged.items() if st is not Status.OK]
    reason = ("high " + ", ".join(bad)) if bad else (
        f"cpu {s['cpu_percent']:.0f}%, mem {s['memory_percent']:.0f}%, disk {s['disk_percent']:.0f}%"
    )
    metrics = tuple(
        Metric(name, float(s[name]))
        for name in (
            "cpu_percent", "memory_percent", "memory_used_bytes", "memory_total_bytes",
            "disk_percent", "disk_used_bytes", "disk_total_bytes", "load1",
        )
    )
    return CheckResult(status, reason, metrics)


SPEC = register(
    CheckSpec(
        name="host",
        scope="host",
        settings=HostSettings,
        inputs=("host_sample",),
        evaluate=evaluate,
        default_interval=15.0,
        description="CPU, memory and state-dir disk of this host",
    )
)
