"""`modeltop demo`: the daemon and the traffic simulator as real subprocesses, then the TUI.

Everything runs in a throwaway state directory unless one is given, so a demo never touches a real
store; quitting the TUI (or the end of a --headless run) stops both children.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from daemon.config import load_config

READY_TIMEOUT_S = 20.0


def _spawn(args: list[str], log_path: Path) -> subprocess.Popen:
    log = open(log_path, "ab")  # noqa: SIM115 - the child owns it for its lifetime
    return subprocess.Popen([sys.executable, *args], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)


def _stop(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_ready(socket_path: Path, daemon: subprocess.Popen, log_path: Path) -> None:
    from daemon.client import Client, DaemonUnreachable
    deadline = time.monotonic() + READY_TIMEOUT_S
    with Client(socket_path, timeout=2) as client:
        while time.monotonic() < deadline:
            if daemon.poll() is not None:
                raise RuntimeError(f"the daemon exited with {daemon.returncode}:\n{_tail(log_path)}")
            with contextlib.suppress(DaemonUnreachable):
                client.health()
                return
            time.sleep(0.2)
    raise RuntimeError(f"the daemon did not answer within {READY_TIMEOUT_S:.0f}s:\n{_tail(log_path)}")


def _wait_for_references(config, simulator: subprocess.Popen, log_path: Path) -> None:
    """The simulator trains its models and writes their reference data first; drift checks need it."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not all(m.reference is None or m.reference.exists() for m in config.models):
        if simulator.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the simulator wrote no reference data:\n{_tail(log_path)}")
        time.sleep(0.1)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _exit_on(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def run_demo(config_path: Path, state_dir: Path | None, headless: bool, seconds: float) -> int:
    # A closed SSH session (SIGHUP) or a kill (SIGTERM) must still stop the children and clean up.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _exit_on)
    temporary = state_dir is None
    state = Path(tempfile.mkdtemp(prefix="modeltop-demo-")) if temporary else state_dir.resolve()
    state.mkdir(parents=True, exist_ok=True)
    config = load_config(config_path, state)
    socket_path = config.daemon.socket
    daemon_log, simulator_log = state / "daemon.log", state / "simulator.log"
    print(f"modeltop demo: state in {state}; logs: {daemon_log.name}, {simulator_log.name}", file=sys.stderr)
    children: list[subprocess.Popen] = []
    try:
        simulator = _spawn(["-m", "daemon.demo.simulator", "--spool-root", str(state / "spool"),
                            "--reference-dir", str(state / "reference")], simulator_log)
        children.append(simulator)
        (state / "simulator.pid").write_text(f"{simulator.pid}\n")  # the demo's "model server" (process check)
        _wait_for_references(config, simulator, simulator_log)
        daemon = _spawn(["-m", "daemon.cli", "daemon", "--config", str(config_path), "--state-dir", str(state)],
                        daemon_log)
        children.append(daemon)
        _wait_ready(socket_path, daemon, daemon_log)
        if headless:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                for proc, log in ((daemon, daemon_log), (simulator, simulator_log)):
                    if proc.poll() is not None:
                        raise RuntimeError(f"{log.stem} exited with {proc.returncode}:\n{_tail(log)}")
                time.sleep(0.2)
            from daemon.cli import main as cli_main
            cli_main(["status", "--socket", str(socket_path)])
        else:
            from tui.app import run
            run(socket_path)
        return 0
    except RuntimeError as exc:
        print(f"modeltop demo: {exc}", file=sys.stderr)
        return 1
    finally:
        for proc in reversed(children):
            _stop(proc)
        if temporary:
            shutil.rmtree(state, ignore_errors=True)
