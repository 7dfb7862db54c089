"""The process check end to end: the real daemon watches a real stand-in model server through its pid file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from support import BASE_CONFIG, wait_for

# A stand-in model server: writes its pid file atomically, then serves (sleeps).
SERVER = """
import os, sys, time
with open(sys.argv[1] + ".tmp", "w") as fh:
    fh.write(f"{os.getpid()}\\n")
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(60)
"""


@pytest.fixture
def start_server():
    started: list[subprocess.Popen] = []

    def start(pid_file: Path) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", SERVER, str(pid_file)])
        started.append(proc)
        wait_for(lambda: pid_file.exists() and pid_file.read_text().strip() == str(proc.pid), message="pid file")
        return proc

    yield start
    for proc in started:
        proc.kill()
        proc.wait()


def _process_check(client) -> dict | None:
    churn = next(m for m in client.status()["models"] if m["name"] == "churn")
    return next(c for c in churn["checks"] if c["check"] == "process")


def test_daemon_sees_the_server_go_down_and_come_back(daemon_handle, start_server):
    pid_file = daemon_handle.root / "churn.pid"
    stanza = f'\n[models.checks.process]\ninterval = "300ms"\npid_file = "{pid_file}"\n'
    daemon_handle.write_config(BASE_CONFIG + stanza)
    first = start_server(pid_file)
    daemon_handle.start()
    with daemon_handle.client() as client:
        wait_for(lambda: _process_check(client)["status"] == "ok", message="process ok")
        shown = daemon_handle.cli("status")
        row = next(line for line in shown.stdout.splitlines() if " process " in line)
        assert row.split()[:3] == ["churn", "process", "OK"] and f"pid {first.pid} up " in row

        first.kill()
        first.wait()
        down = wait_for(lambda: (c := _process_check(client))["status"] == "crit" and c, message="process crit")
        assert down["reason"] == f"process from {pid_file} (pid {first.pid}) is gone"
        assert daemon_handle.cli("status").returncode == 2  # crit, for cron and Nagios-style monitors

        second = start_server(pid_file)
        runs = 'SELECT status, reason FROM check_runs WHERE "check" = \'process\' ORDER BY ts'
        history = wait_for(lambda: (rows := client.sql(runs)["rows"])[-1][0] == "ok" and rows, message="ok again")
        restarted = [reason for status, reason in history if status == "warn"]
        assert restarted == [f"restarted (pid {first.pid} → {second.pid})"]
        restarts = client.sql("SELECT value FROM metrics WHERE \"check\" = 'process' AND metric = 'restarts_total' "
                              "ORDER BY ts DESC LIMIT 1")["rows"]
        assert restarts == [[1.0]]


def test_host_check_records_per_core_cpu_and_the_state_directory_disk(running_daemon):
    state_dir = str(running_daemon.state_dir.resolve())
    query = "SELECT DISTINCT metric, dims FROM metrics WHERE model = '@host' AND dims <> '{}'"
    with running_daemon.client() as client:
        rows = wait_for(lambda: (r := client.sql(query)["rows"]) and any(m == "disk_percent" for m, _ in r) and r,
                        message="host metrics")
    assert ["cpu_percent", '{"core":"0"}'] in rows
    assert ["disk_percent", json.dumps({"path": state_dir}, separators=(",", ":"))] in rows
