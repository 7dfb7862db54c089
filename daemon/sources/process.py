"""psutil sampling of each model's serving process for the `process` check, and `model_pids()` for GPU memory.

The process is found by a pid file, a systemd unit's MainPID (`systemctl show`, 2 s timeout) or a regular
expression over command lines (a scan of /proc, made only while the last match is gone). A process that
cannot be found is a sample with `up: False` and a reason, never an exception: that is the news the check
exists to deliver.

CPU % is computed here from each process's CPU seconds at this sample and the previous one (not with
psutil's `cpu_percent()`, whose state lives in Process objects): children that appeared since the previous
sample add all their CPU seconds, children that exited drop out. Trackers are kept per model in a small
registry, because InputContext is shared and rebuilt on reload.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from checks.process import ProcessSettings
from daemon.inputs import InputContext, provides

SYSTEMCTL_TIMEOUT_S = 2.0
STALE_AFTER_S = 600.0  # model_pids() leaves out trackers not sampled for this long (check removed on reload)


@dataclass(frozen=True)
class ProcessSource:
    """How to find a model's process: kind is pid_file, systemd_unit or cmdline."""

    kind: str
    value: str

    def describe(self) -> str:
        return {"pid_file": f"pid file {self.value}", "systemd_unit": f"systemd unit {self.value}",
                "cmdline": f"cmdline pattern {self.value!r}"}[self.kind]


def source_of(settings: ProcessSettings, state_dir: Path) -> ProcessSource:
    """The settings' source; a relative pid_file is relative to the state directory, like other paths."""
    kind, value = settings.source
    if kind == "pid_file":
        value = str(state_dir / Path(value).expanduser())  # an absolute path stays as it is
    return ProcessSource(kind, value)


class ProcessTracker:
    """One model's serving process across samples: its identity (restarts) and CPU seconds (CPU %)."""

    def __init__(self, source: ProcessSource, include_children: bool = True) -> None:
        self.source = source
        self.include_children = include_children
        self.restarts_total = 0
        self.pids: frozenset[int] = frozenset()  # main + counted children at the last sample
        self.sampled_at: float | None = None  # monotonic
        self._pattern = re.compile(source.value) if source.kind == "cmdline" else None
        self._main: psutil.Process | None = None
        self._children: dict[int, psutil.Process] = {}  # kept between samples: no re-read of start times
        self._identity: tuple[int, float] | None = None  # (pid, create_time) of the last process seen
        self._cpu_seconds: dict[tuple[int, float], float] = {}
        self._prev_wall = 0.0

    def sample(self) -> dict[str, Any]:
        now = time.monotonic()
        found, reason = self._locate()
        sample = self._measure(found, now) if found is not None else None
        self.sampled_at = now
        if sample is None:
            self._main, self.pids, self._cpu_seconds, self._children = None, frozenset(), {}, {}
            return {"up": False, "pid": None, "reason": reason or self._gone(found), "restarted_from": None,
                    "restarts_total": self.restarts_total, "source": self.source.describe()}
        return sample

    # -- finding the process --------------------------------------------------------------------

    def _locate(self) -> tuple[psutil.Process | None, str | None]:
        if self.source.kind == "pid_file":
            return self._from_pid_file(self.source.value)
        if self.source.kind == "systemd_unit":
            return self._from_systemd(self.source.value)
        return self._from_cmdline()

    def _from_pid_file(self, path: str) -> tuple[psutil.Process | None, str | None]:
        try:
            text = Path(path).read_text(errors="replace")
        except FileNotFoundError:
            return None, f"pid file {path} does not exist"
        except OSError as exc:
            return None, f"cannot read pid file {path}: {exc.strerror or exc}"
        try:
            pid = int(text.split()[0])
            if pid <= 0:
                raise ValueError
        except (IndexError, ValueError):
            return None, f"pid file {path} holds no pid ({text.strip()[:20]!r})"
        return self._process(pid, f"process from {path} (pid {pid}) is gone")

    def _from_systemd(self, unit: str) -> tuple[psutil.Process | None, str | None]:
        cmd = ["systemctl", "show", "-p", "MainPID", "--value", unit]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=SYSTEMCTL_TIMEOUT_S,
                                  stdin=subprocess.DEVNULL)
        except FileNotFoundError:
            return None, f"systemctl not found: systemd_unit {unit!r} needs systemd (use pid_file or cmdline)"
        except subprocess.TimeoutExpired:
            return None, f"systemctl show {unit} did not answer within {SYSTEMCTL_TIMEOUT_S:g}s"
        except OSError as exc:
            return None, f"cannot run systemctl: {exc.strerror or exc}"
        if done.returncode != 0:
            why = (done.stderr.strip() or done.stdout.strip() or f"exit status {done.returncode}").splitlines()
            return None, f"systemctl show {unit} failed: {why[0]}"
        try:
            pid = int(done.stdout.strip() or "0")
        except ValueError:
            return None, f"systemctl show {unit} gave no pid ({done.stdout.strip()[:20]!r})"
        if pid <= 0:
            return None, f"systemd unit {unit} has no main process (stopped, failed or unknown)"
        return self._process(pid, f"process of systemd unit {unit} (pid {pid}) is gone")

    def _from_cmdline(self) -> tuple[psutil.Process | None, str | None]:
        """The oldest matching process whose parent does not match (the master, not its workers).

        The daemon itself is never a match. While the last match runs, /proc is not scanned again.
        """
        assert self._pattern is not None
        if self._main is not None and self._main.is_running():
            return self._main, None
        me = os.getpid()
        matches: dict[int, psutil.Process] = {}
        for proc in psutil.process_iter(["ppid", "cmdline", "create_time"]):
            argv = proc.info.get("cmdline")
            if proc.pid != me and argv and self._pattern.search(" ".join(argv)):
                matches[proc.pid] = proc
        if not matches:
            return None, f"no process matches cmdline pattern {self._pattern.pattern!r}"
        roots = [p for p in matches.values() if p.info.get("ppid") not in matches]
        return min(roots or matches.values(), key=lambda p: (p.info.get("create_time") or 0.0, p.pid)), None

    def _process(self, pid: int, gone: str) -> tuple[psutil.Process | None, str | None]:
        if self._main is not None and self._main.pid == pid and self._main.is_running():
            return self._main, None  # same process as before: keep the object (no re-read of its start time)
        try:
            return psutil.Process(pid), None
        except psutil.NoSuchProcess:
            return None, gone
        except psutil.AccessDenied:
            return None, f"pid {pid} ({self.source.describe()}) cannot be inspected: permission denied"

    def _gone(self, proc: psutil.Process | None) -> str:
        pid = proc.pid if proc is not None else "?"
        if self.source.kind == "cmdline":
            return f"process matching cmdline pattern {self.source.value!r} (pid {pid}) is gone"
        if self.source.kind == "systemd_unit":
            return f"process of systemd unit {self.source.value} (pid {pid}) is gone"
        return f"process from {self.source.value} (pid {pid}) is gone"

    # -- measuring it ---------------------------------------------------------------------------

    def _measure(self, main: psutil.Process, now: float) -> dict[str, Any] | None:
        """Figures of the process (and children); None when it turns out to be gone (or a zombie)."""
        procs = [main]
        if self.include_children:
            known = self._children
            self._children = {}
            for pid in descendant_pids(main):
                child = known.get(pid)
                if child is None:
                    try:
                        child = psutil.Process(pid)
                    except (psutil.NoSuchProcess, psutil.AccessDenied):
                        continue
                self._children[pid] = child
                procs.append(child)
        wall = time.time()
        cpu_seconds: dict[tuple[int, float], float] = {}
        rss = threads = fds = 0
        fds_known = True
        main_start: float | None = None
        for i, proc in enumerate(procs):
            try:
                with proc.oneshot():
                    if proc.status() == psutil.STATUS_ZOMBIE:  # exited, not yet reaped: not serving
                        if i == 0:
                            return None
                        continue
                    started = proc.create_time()
                    times = proc.cpu_times()
                    rss += proc.memory_info().rss
                    threads += proc.num_threads()
                    try:
                        fds += proc.num_fds()
                    except (psutil.AccessDenied, AttributeError):  # another user's process; Windows
                        fds_known = False
            except psutil.NoSuchProcess:
                if i == 0:
                    return None
                continue  # a child that exited in between
            except psutil.AccessDenied:
                if i == 0:
                    self._main = None
                    return self._denied(main)
                continue
            if i == 0:
                main_start = started
            cpu_seconds[(proc.pid, started)] = times.user + times.system
        assert main_start is not None
        identity = (main.pid, main_start)
        restarted_from = None
        if self._identity is not None and identity != self._identity:
            restarted_from = self._identity[0]
            self.restarts_total += 1
        cpu_percent = None
        if identity in self._cpu_seconds and self.sampled_at is not None and now > self.sampled_at:
            used = 0.0
            for key, seconds in cpu_seconds.items():
                before = self._cpu_seconds.get(key)
                if before is not None:
                    used += max(0.0, seconds - before)
                elif key[1] >= self._prev_wall:  # started since the previous sample: all its time is new
                    used += seconds
            cpu_percent = 100.0 * used / (now - self.sampled_at)
        self._identity, self._main, self._cpu_seconds, self._prev_wall = identity, main, cpu_seconds, wall
        self.pids = frozenset(pid for pid, _ in cpu_seconds)
        return {
            "up": True, "pid": main.pid, "reason": None, "restarted_from": restarted_from,
            "restarts_total": self.restarts_total, "source": self.source.describe(),
            "cpu_percent": cpu_percent, "rss_bytes": rss, "threads": threads,
            "open_fds": fds if fds_known else None, "processes": len(cpu_seconds),
            "uptime_seconds": max(0.0, wall - main_start),
        }

    def _denied(self, main: psutil.Process) -> dict[str, Any]:
        """Running, but the daemon may not read its figures (hidepid, another user): up, without figures."""
        self.pids = frozenset({main.pid})
        return {"up": True, "pid": main.pid, "reason": None, "restarted_from": None,
                "restarts_total": self.restarts_total, "source": self.source.describe(), "processes": 1}


# -- children -------------------------------------------------------------------------------------------
#
# psutil's Process.children() reads /proc/*/stat of every process on the host (~6 us each) on every call.
# Linux can list a process's children directly (/proc/PID/task/TID/children, CONFIG_PROC_CHILDREN, on in
# most distribution kernels), at a cost that grows with the model's process tree instead of the host's.
# Without it, one scan of /proc is shared by all trackers for PARENT_INDEX_TTL_S (model jobs with the same
# interval start within a second of each other), and redone at once for a process the scan has not seen.

PARENT_INDEX_TTL_S = 1.0
_HAS_PROC_CHILDREN = os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children")
_index_lock = threading.Lock()
_index: dict[int, list[int]] = {}  # parent pid -> child pids, from one scan of /proc
_index_pids: frozenset[int] = frozenset()  # every pid that scan saw
_index_at = -PARENT_INDEX_TTL_S


def descendant_pids(proc: psutil.Process) -> list[int]:
    """Pids of the process's children, grandchildren and so on ([] when it is gone)."""
    if _HAS_PROC_CHILDREN:
        return _walk(proc.pid, _proc_children)
    if not sys.platform.startswith("linux"):
        try:
            return [child.pid for child in proc.children(recursive=True)]
        except psutil.Error:
            return []
    global _index, _index_pids, _index_at
    with _index_lock:
        if time.monotonic() - _index_at > PARENT_INDEX_TTL_S or proc.pid not in _index_pids:
            _index, _index_at = _parent_index(), time.monotonic()
            _index_pids = frozenset(pid for kids in _index.values() for pid in kids)
        index = _index
    return _walk(proc.pid, lambda pid: index.get(pid, []))


def _walk(root: int, children_of: Any) -> list[int]:
    out: list[int] = []
    seen = {root}
    stack = [root]
    while stack:
        for child in children_of(stack.pop()):
            if child not in seen:
                seen.add(child)
                out.append(child)
                stack.append(child)
    return out


def _proc_children(pid: int) -> list[int]:
    """Children of every thread of `pid` (a child belongs to the thread that forked it)."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    out: list[int] = []
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as fh:
                out += [int(p) for p in fh.read().split()]
        except OSError:  # the thread ended in between
            continue
    return out


def _parent_index() -> dict[int, list[int]]:
    """parent -> children over every process, from /proc/PID/stat (the 4th field, after the name)."""
    index: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split(b" ", 2)  # the name may hold spaces and ')'
        try:
            index.setdefault(int(fields[1]), []).append(int(name))
        except (IndexError, ValueError):
            continue
    return index


# -- the registry: one tracker per model, shared with the GPU check -------------------------------------

_LOCK = threading.Lock()
_TRACKERS: dict[str, ProcessTracker] = {}


def tracker_for(model: str, source: ProcessSource, include_children: bool) -> ProcessTracker:
    """The model's tracker; a new one when its settings changed (a reload pointing elsewhere)."""
    with _LOCK:
        tracker = _TRACKERS.get(model)
        if tracker is None or tracker.source != source or tracker.include_children != include_children:
            tracker = _TRACKERS[model] = ProcessTracker(source, include_children)
        return tracker


def model_pids() -> dict[str, set[int]]:
    """model -> pids of its serving process (and counted children) at the last sample; {} before any.

    A model whose process is down maps to an empty set; a tracker not sampled for STALE_AFTER_S (its
    check was removed) is left out.
    """
    now = time.monotonic()
    with _LOCK:
        trackers = dict(_TRACKERS)
    return {model: set(t.pids) for model, t in trackers.items()
            if t.sampled_at is not None and now - t.sampled_at < STALE_AFTER_S}


@provides("process_sample")
def _process_sample(ctx: InputContext) -> dict[str, Any]:
    assert ctx.model is not None, "process_sample is a model input"
    settings = next(c.settings for c in ctx.model.checks if c.name == "process")
    source = source_of(settings, ctx.daemon.state_dir)
    return tracker_for(ctx.model.name, source, settings.include_children).sample()
