"""host: CPU, load, memory, swap, the disks that hold modeltop's and the models' data, and the network.

"Is it the model or the box?" is the first on-call question; this answers the box half. The sample is
taken by the daemon (daemon/sources/host.py); this module only judges it. CPU, memory, swap and disk space
decide the status; load, disk I/O and network figures are recorded for the TUI and for queries (their
normal level depends too much on the machine for a default threshold).

Config stanza (defaults):

    [host.checks.host]
    interval = "15s"
    cpu_warn = 90.0          # % of all cores, averaged since the previous sample
    cpu_crit = 98.0
    memory_warn = 90.0       # % of RAM in use (total - available)
    memory_crit = 97.0
    swap_warn = 50.0         # % of swap in use: RAM ran short and model pages may be paged out, which
    swap_crit = 80.0         #   shows as latency spikes; a host without swap reads 0 and never fires
    disk_warn = 85.0         # % used, for each watched directory's filesystem: the state directory
    disk_crit = 95.0         #   and every model's spool and reference directories

Metrics (dims in braces; rates are absent on the first sample, never a made-up 0):

    cpu_percent                       %        all cores
    cpu_percent {core}                %        each core ("0", "1", ...)
    load1, load5, load15              tasks    run-queue averages
    memory_percent, swap_percent      %
    memory_used_bytes, memory_total_bytes, swap_used_bytes, swap_total_bytes     bytes
    disk_percent {path}               %        filesystem holding the directory
    disk_used_bytes, disk_total_bytes {path}   bytes
    disk_read_bytes_per_second, disk_write_bytes_per_second {path}   bytes/s of its block device
    net_sent_bytes_per_second, net_recv_bytes_per_second             bytes/s, all non-loopback NICs
    net_errors_in_per_second, net_errors_out_per_second, net_drops_in_per_second,
    net_drops_out_per_second          packets/s
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
    swap_warn: float = 50.0
    swap_crit: float = 80.0
    disk_warn: float = 85.0
    disk_crit: float = 95.0


@dataclass(frozen=True)
class Judged:
    """A percentage that decides the status (glances style: unit and direction beside the computation)."""

    label: str  # as it reads in a reason
    key: str  # in the host sample
    setting: str  # prefix of its `_warn`/`_crit` settings; higher is worse for all of them


JUDGED = (
    Judged("cpu", "cpu_percent", "cpu"),
    Judged("memory", "memory_percent", "memory"),
    Judged("swap", "swap_percent", "swap"),
)
# Recorded as they are, with no dims; the sample key is the metric name. Units: see the module docstring.
PLAIN_METRICS = (
    "cpu_percent", "load1", "load5", "load15",
    "memory_percent", "memory_used_bytes", "memory_total_bytes",
    "swap_percent", "swap_used_bytes", "swap_total_bytes",
)
DISK_METRICS = (
    ("percent", "disk_percent"), ("used_bytes", "disk_used_bytes"), ("total_bytes", "disk_total_bytes"),
    ("read_bytes_per_second", "disk_read_bytes_per_second"),
    ("write_bytes_per_second", "disk_write_bytes_per_second"),
)
NET_METRICS = (
    "sent_bytes_per_second", "recv_bytes_per_second", "errors_in_per_second", "errors_out_per_second",
    "drops_in_per_second", "drops_out_per_second",
)


def evaluate(inputs: Mapping[str, Any], settings: HostSettings) -> CheckResult:
    """inputs: `host_sample` as daemon/sources/host.py's HostSampler.sample() returns it."""
    s = inputs["host_sample"]
    findings: list[tuple[str, float, Status]] = []  # (label, percent, status)
    for j in JUDGED:
        value = s.get(j.key)
        if value is None or (j.key == "swap_percent" and not s.get("swap_total_bytes")):
            continue
        warn, crit = getattr(settings, f"{j.setting}_warn"), getattr(settings, f"{j.setting}_crit")
        findings.append((j.label, float(value), threshold_status(float(value), warn, crit)))
    for fs_paths, percent in _filesystems(s.get("disks", ())):
        label = f"disk {fs_paths[0]}" + (f" (+{len(fs_paths) - 1} more)" if len(fs_paths) > 1 else "")
        findings.append((label, percent, threshold_status(percent, settings.disk_warn, settings.disk_crit)))
    status = worst([st for _, _, st in findings])
    bad = [f"{label} {value:.0f}%" for label, value, st in findings if st is not Status.OK]
    if bad:
        reason = "high " + ", ".join(bad)
    else:
        shown = [f"{'mem' if label == 'memory' else label} {value:.0f}%" for label, value, _ in findings
                 if not label.startswith("disk")]
        fullest = max((v for label, v, _ in findings if label.startswith("disk")), default=None)
        if fullest is not None:
            shown.append(f"disk {fullest:.0f}%")
        reason = ", ".join(shown) or "no figures yet"
    errors = [f"{d['path']}: {d['error']}" for d in s.get("disks", ()) if d.get("error")]
    if errors:
        reason += "; cannot read " + "; ".join(errors)
    return CheckResult(status, reason, tuple(host_metrics(s)))


def host_metrics(s: Mapping[str, Any]) -> list[Metric]:
    """Every figure of the sample as metrics; figures that are None (not measured yet) are left out."""
    out = [Metric(name, float(s[name])) for name in PLAIN_METRICS if s.get(name) is not None]
    for core, value in enumerate(s.get("cpu_percent_per_core") or ()):
        if value is not None:
            out.append(Metric("cpu_percent", float(value), {"core": str(core)}))
    for disk in s.get("disks", ()):
        for key, name in DISK_METRICS:
            if disk.get(key) is not None:
                out.append(Metric(name, float(disk[key]), {"path": disk["path"]}))
    net = s.get("net") or {}
    out += [Metric(f"net_{key}", float(net[key])) for key in NET_METRICS if net.get(key) is not None]
    return out


def _filesystems(disks: Any) -> list[tuple[list[str], float]]:
    """Watched directories grouped by the filesystem that holds them: one finding per filesystem."""
    groups: dict[Any, tuple[list[str], float]] = {}
    for d in disks:
        if d.get("percent") is None:
            continue
        key = d.get("filesystem", d["path"])
        groups.setdefault(key, ([], float(d["percent"])))[0].append(d["path"])
    return list(groups.values())


SPEC = register(
    CheckSpec(
        name="host",
        scope="host",
        settings=HostSettings,
        inputs=("host_sample",),
        evaluate=evaluate,
        default_interval=15.0,
        description="CPU, load, memory, swap, data disks (space and I/O) and network of this host",
    )
)
