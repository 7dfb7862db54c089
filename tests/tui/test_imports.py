"""The TUI is a pure client: it never loads the store, NVML, psutil or the scheduler."""

import subprocess
import sys

from support import REPO


def test_tui_imports_no_daemon_internals():
    code = "import sys, tui.app; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    loaded = {name.split(".")[0] for name in out.stdout.split()}
    assert "textual" in loaded
    assert not loaded & {"duckdb", "pynvml", "psutil", "apscheduler", "aiohttp", "sklearn", "numpy"}
    daemon_modules = {name for name in out.stdout.split() if name.startswith("daemon.")}
    assert daemon_modules == {"daemon.client"}
