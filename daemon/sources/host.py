"""psutil sampling of the host for the `host` check (only the daemon imports psutil).

One `sample()` makes one pass of cheap psutil reads (/proc files on Linux: tens of microseconds each):
per-core CPU times, memory, swap, load, `statvfs` of every watched directory, /proc/diskstats and
/proc/net/dev. Rates (CPU %, disk and network bytes/s) come from the difference with the previous sample,
so the first sample carries no rate: "not measured yet" is None, never a made-up 0. CPU times are primed
at construction, so the first CPU % already covers the time since the sampler was made.

Disk I/O is per block device; each watched directory is mapped to the device that holds it through its
`st_dev` (/sys/dev/block/MAJOR:MINOR names it as /proc/diskstats does). A directory on a filesystem with
no block device (tmpfs, overlayfs in a container, NFS) has no I/O figures, only its space.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import psutil


def model_paths(models: Iterable[Any]) -> list[Path]:
    """The spool directories and the reference data's directory of each configured model."""
    paths: list[Path] = []
    for model in models:
        paths += [p for p in (model.predictions, model.labels) if p is not None]
        if model.reference is not None:
            paths.append(model.reference.parent)
    return paths


def is_loopback(nic: str) -> bool:
    """`lo` on Linux, `lo0` on macOS/BSD."""
    return nic == "lo" or (nic.startswith("lo") and nic[2:].isdigit())


def existing_ancestor(path: Path) -> Path:
    """The path itself or its nearest existing parent: the filesystem that holds (or will hold) it."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(path.anchor or "/")


def _cpu_total_and_busy(times: Any) -> tuple[float, float]:
    """Total and busy seconds of one CPU, as psutil and htop count them (guest time is in user already)."""
    total = sum(times) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)
    return total, total - times.idle - getattr(times, "iowait", 0.0)


def _percent(busy: float, total: float) -> float | None:
    return None if total <= 0 else min(100.0, max(0.0, 100.0 * busy / total))


def _rate(now: float | None, before: float | None, seconds: float) -> float | None:
    """Per-second rate of a counter; None when unknown or when the counter went backwards (a reset)."""
    if now is None or before is None or seconds <= 0 or now < before:
        return None
    return (now - before) / seconds


class HostSampler:
    """Host CPU, memory, swap, load, disks of the watched directories and network, with rates.

    `disk_path` is the state directory; `extra_paths` adds more directories (the models' spool and
    reference directories: see `model_paths`). Safe to call from several threads (one sample at a time).
    """

    def __init__(self, disk_path: Path, extra_paths: Iterable[Path] = ()) -> None:
        self.disk_path = Path(disk_path)
        self.paths: tuple[Path, ...] = ()
        self.set_paths([self.disk_path, *extra_paths])
        self._lock = threading.Lock()
        self._device_names: dict[int, str | None] = {}
        self._prev_at: float | None = None
        self._prev_disk: dict[str, tuple[int, int]] = {}
        self._prev_net: tuple[int, ...] | None = None
        self._prev_cpu = psutil.cpu_times(percpu=True)  # prime: CPU % covers the time since now

    def set_paths(self, paths: Iterable[Path]) -> None:
        """Watch these directories (duplicates dropped, order kept); e.g. after a config reload."""
        seen: dict[Path, None] = {}
        for p in paths:
            seen.setdefault(Path(p), None)
        self.paths = tuple(seen)

    def sample(self) -> dict[str, Any]:
        with self._lock:
            return self._sample()

    def _sample(self) -> dict[str, Any]:
        now = time.monotonic()
        elapsed = None if self._prev_at is None else now - self._prev_at
        cpu = psutil.cpu_times(percpu=True)
        memory = psutil.virtual_memory()
        swap = psutil.swap_memory()
        load = os.getloadavg()
        io = _disk_io()
        net = _net_totals()

        per_core: list[float | None] = []
        sum_total = sum_busy = 0.0
        for before, after in zip(self._prev_cpu, cpu, strict=False):
            t0, b0 = _cpu_total_and_busy(before)
            t1, b1 = _cpu_total_and_busy(after)
            per_core.append(_percent(b1 - b0, t1 - t0))
            sum_total += t1 - t0
            sum_busy += b1 - b0
        cores_known = len(self._prev_cpu) == len(cpu)  # a CPU hot-plugged in between: skip this once
        self._prev_cpu = cpu

        disks = [self._disk(path, io, elapsed) for path in self.paths]
        self._prev_disk = io
        net_rates = None
        if net is not None and self._prev_net is not None and elapsed:
            names = ("sent_bytes", "recv_bytes", "errors_in", "errors_out", "drops_in", "drops_out")
            rates = [_rate(a, b, elapsed) for a, b in zip(net, self._prev_net, strict=True)]
            if all(r is not None for r in rates):
                net_rates = {f"{name}_per_second": r for name, r in zip(names, rates, strict=True)}
        self._prev_net = net
        self._prev_at = now
        return {
            "cpu_percent": _percent(sum_busy, sum_total) if cores_known else None,  # None: no time passed
            "cpu_percent_per_core": tuple(per_core) if cores_known else None,
            "load1": load[0],
            "load5": load[1],
            "load15": load[2],
            "memory_percent": memory.percent,
            "memory_used_bytes": memory.total - memory.available,
            "memory_total_bytes": memory.total,
            "swap_percent": swap.percent,
            "swap_used_bytes": swap.used,
            "swap_total_bytes": swap.total,
            "disks": tuple(disks),
            "net": net_rates,
            "interval_s": elapsed,
        }

    def _disk(self, path: Path, io: dict[str, tuple[int, int]], elapsed: float | None) -> dict[str, Any]:
        """Space of the filesystem holding `path`, and I/O rates of its block device when it has one."""
        entry: dict[str, Any] = {"path": str(path), "filesystem": None, "device": None, "percent": None,
                                 "used_bytes": None, "total_bytes": None, "read_bytes_per_second": None,
                                 "write_bytes_per_second": None, "error": None}
        try:
            holder = existing_ancestor(path)
            dev = os.stat(holder).st_dev
            usage = psutil.disk_usage(str(holder))
        except OSError as exc:
            entry["error"] = f"{type(exc).__name__}: {exc.strerror or exc}"
            return entry
        device = self._device_name(dev, io)
        entry.update(filesystem=dev, device=device, percent=usage.percent, used_bytes=usage.used,
                     total_bytes=usage.total)
        if device is not None and elapsed and device in io and device in self._prev_disk:
            (r1, w1), (r0, w0) = io[device], self._prev_disk[device]
            entry["read_bytes_per_second"] = _rate(r1, r0, elapsed)
            entry["write_bytes_per_second"] = _rate(w1, w0, elapsed)
        return entry

    def _device_name(self, dev: int, io: dict[str, tuple[int, int]]) -> str | None:
        if dev not in self._device_names:  # a filesystem's device does not change while it is mounted
            self._device_names[dev] = block_device_name(dev, io)
        return self._device_names[dev]


def block_device_name(dev: int, known: Sequence[str] | dict[str, Any]) -> str | None:
    """The /proc/diskstats name ("vda", "nvme0n1p2", "dm-0") of the device `st_dev`, or None (tmpfs, overlay)."""
    if sys.platform.startswith("linux"):
        link = Path(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}")
        try:
            name = Path(os.path.realpath(link)).name if link.exists() else None
        except OSError:
            name = None
        return name if name in known else None
    # elsewhere: the partition whose mount point's st_dev matches, by its device's base name
    for part in psutil.disk_partitions(all=False):
        try:
            if os.stat(part.mountpoint).st_dev == dev:
                name = Path(os.path.realpath(part.device)).name
                return name if name in known else None
        except OSError:
            continue
    return None


def _disk_io() -> dict[str, tuple[int, int]]:
    """Bytes read and written so far per block device ({} where the OS gives none)."""
    try:
        counters = psutil.disk_io_counters(perdisk=True) or {}
    except (OSError, RuntimeError):
        return {}
    return {name: (c.read_bytes, c.write_bytes) for name, c in counters.items()}


def _net_totals() -> tuple[int, ...] | None:
    """Bytes sent/received, errors in/out and drops in/out so far, summed over non-loopback NICs."""
    try:
        counters = psutil.net_io_counters(pernic=True) or {}
    except (OSError, RuntimeError):
        return None
    totals = [0] * 6
    for nic, c in counters.items():
        if is_loopback(nic):
            continue
        for i, value in enumerate((c.bytes_sent, c.bytes_recv, c.errin, c.errout, c.dropin, c.dropout)):
            totals[i] += value
    return tuple(totals)
