"""Shared fixtures: a real daemon in a subprocess on a temporary state directory.

No part of modeltop is mocked here: the daemon, its DuckDB file, its Unix socket and the CLI are the
real ones, as a user would run them. Helpers live in tests/support.py.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import DaemonHandle


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short temp dir: Unix socket paths must stay under ~100 bytes."""
    path = Path(tempfile.mkdtemp(prefix="mt-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def daemon_handle(short_tmp: Path) -> Iterator[DaemonHandle]:
    """A configured but not yet started daemon (call .start())."""
    handle = DaemonHandle(short_tmp)
    yield handle
    if handle.proc is not None and handle.proc.poll() is None:
        handle.proc.terminate()
        try:
            handle.proc.wait(10)
        except subprocess.TimeoutExpired:
            handle.proc.kill()
            handle.proc.wait()


@pytest.fixture
def running_daemon(daemon_handle: DaemonHandle) -> DaemonHandle:
    """The real daemon, started and answering on its socket."""
    return daemon_handle.start()
