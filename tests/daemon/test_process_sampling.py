"""Finding and measuring real "model server" processes (children of this test), and sampling the real host."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest

from checks.base import Status
from checks.host import HostSettings
from checks.host import evaluate as evaluate_host
from checks.process import ProcessSettings, evaluate
from daemon.sources import process as process_source
from daemon.sources.host import HostSampler
from daemon.sources.process import ProcessSource, ProcessTracker, model_pids, tracker_for
from support import wait_for

# A stand-in model server: starts N workers, then writes its pid (atomically) to argv[1] and sleeps.
SERVER = """
import os, subprocess, sys, time
ready, workers = sys.argv[1], int(sys.argv[2])
kids = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", *sys.argv[3:]]) for _ in range(workers)]
with open(ready + ".tmp", "w") as fh:
    fh.write(f"{os.getpid()}\\n")
os.replace(ready + ".tmp", ready)
time.sleep(60)
"""


class Servers:
    """Starts stand-in servers and kills each one's whole tree (by pid) when asked or at the end."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen] = []

    def start(self, ready: Path, workers: int = 0, *argv: str) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", SERVER, str(ready), str(workers), *argv])
        self.started.append(proc)
        wait_for(lambda: ready.exists() and ready.read_text().strip() == str(proc.pid), message="server ready")
        return proc

    def kill(self, proc: subprocess.Popen) -> None:
        try:
            for child in psutil.Process(proc.pid).children(recursive=True):
                child.kill()
        except psutil.NoSuchProcess:
            pass
        proc.kill()
        proc.wait()


@pytest.fixture
def servers():
    handle = Servers()
    yield handle
    for proc in handle.started:
        handle.kill(proc)


def checked(tracker: ProcessTracker, settings: ProcessSettings):
    return evaluate({"process_sample": tracker.sample()}, settings)


def test_a_killed_server_is_down_and_its_successor_a_restart(tmp_path, servers):
    pid_file = tmp_path / "server.pid"
    settings = ProcessSettings(pid_file=str(pid_file))
    tracker = ProcessTracker(ProcessSource("pid_file", str(pid_file)))
    first = servers.start(pid_file)
    up = checked(tracker, settings)
    assert up.status is Status.OK and up.reason.startswith(f"pid {first.pid} up ")

    servers.kill(first)
    down = checked(tracker, settings)
    assert down.status is Status.CRIT
    assert down.reason == f"process from {pid_file} (pid {first.pid}) is gone"

    second = servers.start(pid_file)
    back = checked(tracker, settings)
    assert back.status is Status.WARN and back.reason == f"restarted (pid {first.pid} → {second.pid})"
    assert {m.name: m.value for m in back.metrics}["restarts_total"] == 1.0
    steady = checked(tracker, settings)
    assert steady.status is Status.OK and steady.reason.startswith(f"pid {second.pid} up ")
    assert {m.name: m.value for m in steady.metrics}["cpu_percent"] >= 0.0  # measured from the 2nd sample on


def test_pid_file_problems_are_reasons(tmp_path):
    pid_file = tmp_path / "server.pid"
    settings = ProcessSettings(pid_file=str(pid_file))
    tracker = ProcessTracker(ProcessSource("pid_file", str(pid_file)))
    assert checked(tracker, settings).reason == f"pid file {pid_file} does not exist"
    pid_file.write_text("starting\n")
    result = checked(tracker, settings)
    assert result.status is Status.CRIT and result.reason == f"pid file {pid_file} holds no pid ('starting')"


@pytest.mark.parametrize("proc_children_file", [True, False], ids=["proc-children-file", "proc-scan"])
def test_workers_count_as_the_model_and_are_its_pids(tmp_path, servers, monkeypatch, proc_children_file):
    if proc_children_file and not process_source._HAS_PROC_CHILDREN:
        pytest.skip("this kernel has no /proc/PID/task/TID/children")
    monkeypatch.setattr(process_source, "_HAS_PROC_CHILDREN", proc_children_file)  # a kernel without it
    pid_file = tmp_path / "server.pid"
    server = servers.start(pid_file, 2)
    workers = {c.pid for c in psutil.Process(server.pid).children()}
    source = ProcessSource("pid_file", str(pid_file))
    sample = tracker_for("resources_test_model", source, True).sample()
    assert sample["processes"] == 3 and sample["threads"] >= 3
    assert model_pids()["resources_test_model"] == {server.pid, *workers}
    alone = tracker_for("resources_test_model", source, False).sample()  # a reload turned children off
    assert alone["processes"] == 1 and model_pids()["resources_test_model"] == {server.pid}


def test_cmdline_pattern_finds_the_master_not_its_workers(tmp_path, servers):
    marker = f"mt-model-{uuid.uuid4().hex[:8]}"
    server = servers.start(tmp_path / "ready", 2, "--name", marker)
    settings = ProcessSettings(cmdline=rf"--name {re.escape(marker)}\b")
    tracker = ProcessTracker(ProcessSource("cmdline", settings.cmdline))
    up = checked(tracker, settings)
    assert up.status is Status.OK and up.reason.startswith(f"pid {server.pid} up ")
    assert up.reason.endswith("(3 processes)")

    servers.kill(server)
    down = checked(tracker, settings)
    assert down.status is Status.CRIT
    assert down.reason == f"no process matches cmdline pattern {settings.cmdline!r}"


def _fake_systemctl(bin_dir: Path, main_pid: int) -> None:
    """systemctl at the system edge: answers `show -p MainPID --value model.service` like systemd does."""
    script = bin_dir / "systemctl"
    script.write_text('#!/bin/sh\n[ "$*" = "show -p MainPID --value model.service" ] || exit 1\n'
                      f"echo {main_pid}\n")
    script.chmod(0o755)


def test_systemd_unit_main_pid(tmp_path, servers, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    settings = ProcessSettings(systemd_unit="model.service")
    tracker = ProcessTracker(ProcessSource("systemd_unit", "model.service"))
    assert checked(tracker, settings).reason == (
        "systemctl not found: systemd_unit 'model.service' needs systemd (use pid_file or cmdline)")

    server = servers.start(tmp_path / "ready")
    _fake_systemctl(bin_dir, server.pid)
    up = checked(tracker, settings)
    assert up.status is Status.OK and up.reason.startswith(f"pid {server.pid} up ")

    _fake_systemctl(bin_dir, 0)  # what systemd answers for a stopped unit
    down = checked(tracker, settings)
    assert down.status is Status.CRIT
    assert down.reason == "systemd unit model.service has no main process (stopped, failed or unknown)"


def test_host_sample_covers_every_watched_directory_and_rates_start_on_the_second(tmp_path):
    spool = tmp_path / "spool" / "churn" / "predictions"
    spool.mkdir(parents=True)
    not_yet = tmp_path / "reference"  # configured but not created yet: its future filesystem is reported
    sampler = HostSampler(tmp_path, [spool, not_yet, spool])
    first = sampler.sample()
    assert [d["path"] for d in first["disks"]] == [str(tmp_path), str(spool), str(not_yet)]
    assert first["net"] is None
    assert all(d["read_bytes_per_second"] is None and d["percent"] is not None for d in first["disks"])

    time.sleep(0.05)
    second = sampler.sample()
    assert second["net"] is not None and second["cpu_percent"] is not None
    assert len(second["cpu_percent_per_core"]) == psutil.cpu_count()
    result = evaluate_host({"host_sample": second}, HostSettings())
    paths = {m.dims.get("path") for m in result.metrics if m.name == "disk_percent"}
    assert paths == {str(tmp_path), str(spool), str(not_yet)}
    cores = {m.dims["core"] for m in result.metrics if m.name == "cpu_percent" and m.dims}
    assert cores == {str(i) for i in range(psutil.cpu_count())}
