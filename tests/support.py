"""Test helpers: the daemon as a subprocess, prediction records, polling (imported as `support`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from daemon.client import Client, DaemonUnreachable

REPO = Path(__file__).resolve().parent.parent


BASE_CONFIG = """
[daemon]
log_level = "debug"
ingest_interval = "200ms"
shutdown_timeout = "5s"

[host.checks.host]
interval = "1s"
cpu_warn = 101.0   # the test runner itself keeps this machine's CPU busy: never judge it here
cpu_crit = 101.0

[[models]]
name = "churn"
predictions = "spool/churn/predictions"
labels = "spool/churn/labels"

[models.features]
tenure_months = "double"
contract = "string"

[models.checks.freshness]
interval = "1s"
warn_after = "60s"
crit_after = "1h"
"""


class DaemonHandle:
    """One daemon subprocess and the paths around it."""

    def __init__(self, root: Path, config_text: str = BASE_CONFIG) -> None:
        self.root = root
        self.config = root / "config.toml"
        self.state_dir = root / "state"
        self.socket = self.state_dir / "modeltop.sock"
        self.log = root / "daemon.log"
        self.proc: subprocess.Popen | None = None
        self.write_config(config_text)

    def write_config(self, text: str) -> None:
        self.config.write_text(text)

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
        env["PYTHONPATH"] = str(REPO)
        env.update(extra)
        return env

    def start(self, wait: bool = True, **env: str) -> DaemonHandle:
        log = open(self.log, "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "daemon.cli", "daemon", "--config", str(self.config),
             "--state-dir", str(self.state_dir)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env(**env), cwd=self.root,
        )
        log.close()
        if wait:
            self.wait_healthy()
        return self

    def wait_healthy(self, timeout: float = 20.0) -> dict:
        deadline = time.monotonic() + timeout
        with Client(self.socket, timeout=2) as client:
            while time.monotonic() < deadline:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise AssertionError(f"daemon exited with {self.proc.returncode}:\n{self.log_text()}")
                try:
                    return client.health()
                except DaemonUnreachable:
                    time.sleep(0.1)
        raise AssertionError(f"daemon not healthy within {timeout}s:\n{self.log_text()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"daemon ignored signal {sig} for {timeout}s:\n{self.log_text()}") from None

    def client(self) -> Client:
        return Client(self.socket)

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """`modeltop ARGS` as a user runs it, against this daemon's config and state dir."""
        return subprocess.run(
            [sys.executable, "-m", "daemon.cli", "--config", str(self.config), "--state-dir", str(self.state_dir),
             *args],
            capture_output=True, text=True, env=self.env(), cwd=self.root, timeout=timeout,
        )

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def write_predictions(self, model: str, records: list[dict], name: str = "a.jsonl") -> Path:
        spool = self.state_dir / "spool" / model / "predictions"
        spool.mkdir(parents=True, exist_ok=True)
        path = spool / name
        with open(path, "a") as fh:
            fh.write("".join(json.dumps(r) + "\n" for r in records))
        return path


def prediction(request_id: str, age_s: float = 0.0, **features: object) -> dict:
    """A prediction record as a model server would log it, `age_s` seconds old."""
    ts = datetime.now(UTC) - timedelta(seconds=age_s)
    return {"ts": ts.isoformat(), "request_id": request_id, "prediction": "1", "score": 0.8,
            "features": {"tenure_months": 12.0, "contract": "one-year", **features}}


def wait_for(predicate, timeout: float = 15.0, interval: float = 0.1, message: str = "condition"):
    """Poll until `predicate()` is truthy; returns its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


