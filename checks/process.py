"""process: is the model's serving process up, did it restart, and what does it use (CPU, RSS, threads, fds).

A model can log predictions from a cache while its server is dead, or restart in a crash loop between two
freshness checks; this check looks at the process itself. The daemon finds it (daemon/sources/process.py)
by exactly one of: a pid file, a systemd unit's MainPID, or a regular expression over command lines; and
with `include_children` it adds the process's children (pre-forked workers, data loaders) to the figures.

Status: crit when no process is found (the reason says which pid file, unit or pattern and why); warn for
the one run that sees a new process ("restarted (pid A → B)"); otherwise the worst threshold. Thresholds
are off by default, because a model server's normal CPU and memory depend entirely on the model.

Config stanza (defaults):

    [models.checks.process]
    interval = "15s"
    pid_file = "/run/churn/server.pid"  # one of these three (exactly one); a relative pid_file is
    # systemd_unit = "churn.service"    #   relative to the state directory; cmdline is a Python regular
    # cmdline = "gunicorn .*churn"      #   expression searched in each process's space-joined argv
    include_children = true    # count children's CPU, memory, threads and fds as the model's
    cpu_warn = unset           # % of ONE core (a 4-thread server can reach 400); unset = no threshold
    cpu_crit = unset
    rss_warn_mb = unset        # resident memory in MiB, summed over the processes
    rss_crit_mb = unset
    fds_warn = unset           # open file descriptors, summed: a leak shows as a steady climb

Metrics: up (1/0), restarts_total (restarts seen since the daemon started), cpu_percent (% of one core,
since the previous sample; absent on a process's first sample), rss_bytes, threads, open_fds (absent when
the daemon may not read the process's fd table: another user's process), processes (how many were
counted), uptime_seconds. RSS is summed per process, so pages that pre-forked workers share with their
parent count once per process: an upper bound.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from checks.base import CheckResult, CheckSpec, Metric, Status, register, threshold_status, worst
from checks.freshness import format_age

MIB = 1024 * 1024
SOURCES = ("pid_file", "systemd_unit", "cmdline")


@dataclass(frozen=True)
class ProcessSettings:
    pid_file: str | None = None
    systemd_unit: str | None = None
    cmdline: str | None = None
    include_children: bool = True
    cpu_warn: float | None = None
    cpu_crit: float | None = None
    rss_warn_mb: float | None = None
    rss_crit_mb: float | None = None
    fds_warn: int | None = None

    def __post_init__(self) -> None:
        """ValueError, phrased to follow "expected", for settings that cannot describe one process."""
        chosen = [name for name in SOURCES if getattr(self, name) is not None]
        if len(chosen) != 1:
            found = "none" if not chosen else " and ".join(chosen)
            raise ValueError(f"exactly one of pid_file, systemd_unit or cmdline, found {found}")
        if not getattr(self, chosen[0]).strip():
            raise ValueError(f"a non-empty {chosen[0]}, found an empty string")
        if self.cmdline is not None:
            try:
                re.compile(self.cmdline)
            except re.error as exc:
                raise ValueError(f"cmdline to be a regular expression, found {self.cmdline!r} ({exc})") from None
        for warn, crit in (("cpu_warn", "cpu_crit"), ("rss_warn_mb", "rss_crit_mb")):
            w, c = getattr(self, warn), getattr(self, crit)
            if w is not None and c is not None and w > c:
                raise ValueError(f"{warn} not above {crit} ({c:g}), found {w:g}")

    @property
    def source(self) -> tuple[str, str]:
        """(kind, value): how to find the process, e.g. ("pid_file", "/run/churn.pid")."""
        kind = next(name for name in SOURCES if getattr(self, name) is not None)
        return kind, getattr(self, kind)


@dataclass(frozen=True)
class Threshold:
    """One judged figure: its sample key, unit scale and the settings that bound it (higher is worse)."""

    label: str
    key: str
    unit: str
    scale: float
    warn: str
    crit: str | None


THRESHOLDS = (
    Threshold("cpu", "cpu_percent", "%", 1.0, "cpu_warn", "cpu_crit"),
    Threshold("rss", "rss_bytes", " MiB", MIB, "rss_warn_mb", "rss_crit_mb"),
    Threshold("fds", "open_fds", "", 1.0, "fds_warn", None),
)
RECORDED = ("cpu_percent", "rss_bytes", "threads", "open_fds", "processes", "uptime_seconds")


def evaluate(inputs: Mapping[str, Any], settings: ProcessSettings) -> CheckResult:
    """inputs: `process_sample`, as daemon/sources/process.py's ProcessTracker.sample() returns it:
    up, pid, reason (why not up), restarted_from (the previous pid, on the run that sees a new process),
    restarts_total, and when up: cpu_percent (or None), rss_bytes, threads, open_fds (or None), processes,
    uptime_seconds."""
    s = inputs["process_sample"]
    metrics = [Metric("up", 1.0 if s["up"] else 0.0), Metric("restarts_total", float(s["restarts_total"]))]
    if not s["up"]:
        return CheckResult(Status.CRIT, s["reason"], tuple(metrics))
    metrics += [Metric(name, float(s[name])) for name in RECORDED if s.get(name) is not None]

    judged: list[tuple[Threshold, float, Status]] = []
    for t in THRESHOLDS:
        value = s.get(t.key)
        if value is None:
            continue
        scaled = float(value) / t.scale
        crit = getattr(settings, t.crit) if t.crit else None
        judged.append((t, scaled, threshold_status(scaled, getattr(settings, t.warn), crit)))
    statuses = [st for _, _, st in judged]
    parts: list[str] = []
    restarted = s.get("restarted_from") is not None
    if restarted:
        statuses.append(Status.WARN)
        parts.append(f"restarted (pid {s['restarted_from']} → {s['pid']})")
    high = [f"{t.label} {v:.0f}{t.unit}" for t, v, st in judged if st is not Status.OK]
    if high:
        parts.append("high " + ", ".join(high) + ("" if restarted else f" (pid {s['pid']})"))
    if not parts:
        parts.append(_summary(s))
    return CheckResult(worst(statuses), "; ".join(parts), tuple(metrics))


def _summary(s: Mapping[str, Any]) -> str:
    """'pid 123 up 2h: cpu 3%, rss 120 MiB, 4 threads, 12 fds (3 processes)'."""
    head = f"pid {s['pid']}" + (f" up {format_age(s['uptime_seconds'])}" if s.get("uptime_seconds") is not None
                                else "")
    figures = []
    if s.get("cpu_percent") is not None:
        figures.append(f"cpu {s['cpu_percent']:.0f}%")
    if s.get("rss_bytes") is not None:
        figures.append(f"rss {s['rss_bytes'] / MIB:.0f} MiB")
    if s.get("threads") is not None:
        figures.append(f"{s['threads']} thread{'s' if s['threads'] != 1 else ''}")
    if s.get("open_fds") is not None:
        figures.append(f"{s['open_fds']} fd{'s' if s['open_fds'] != 1 else ''}")
    text = head + (": " + ", ".join(figures) if figures else "")
    if (s.get("processes") or 1) > 1:
        text += f" ({s['processes']} processes)"
    return text


SPEC = register(
    CheckSpec(
        name="process",
        scope="model",
        settings=ProcessSettings,
        inputs=("process_sample",),
        evaluate=evaluate,
        default_interval=15.0,
        description="the model's serving process: up, restarts, CPU, RSS, threads, fds",
    )
)
