"""Layering: the daemon and checks never pull in the TUI toolkit; checks never touch the store or system."""

import subprocess
import sys

from support import REPO


def imported_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    return {name.split(".")[0] for name in out.stdout.split()}


def test_daemon_and_checks_never_import_textual():
    modules = imported_after("import daemon.service, daemon.cli, checks")
    assert "textual" not in modules and "tui" not in modules


def test_checks_are_pure():
    modules = imported_after("import checks")
    assert not modules & {"duckdb", "psutil", "pynvml", "aiohttp", "httpx", "textual", "daemon"}


def test_cli_starts_without_loading_the_heavy_parts():
    modules = imported_after("import daemon.cli")
    assert not modules & {"duckdb", "textual", "sklearn", "aiohttp"}
