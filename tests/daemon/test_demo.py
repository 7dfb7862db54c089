"""`modeltop demo --headless`: the whole path (simulator -> spool -> daemon -> store -> API -> CLI) in one go."""

import subprocess
import sys

from support import REPO


def test_headless_demo_serves_real_traffic_and_prints_status(short_tmp):
    # 17 s: the demo's freshness check runs every 15 s, so its second run sees the traffic
    result = subprocess.run(
        [sys.executable, "-m", "daemon.cli", "demo", "--headless", "--seconds", "17", "--state-dir", str(short_tmp)],
        capture_output=True, text=True, cwd=REPO, timeout=90,
    )
    assert result.returncode == 0, result.stderr
    rows = {tuple(line.split()[:2]): line for line in result.stdout.splitlines() if len(line.split()) > 2}
    assert ("MODEL", "CHECK") in rows and ("@host", "host") in rows
    assert "OK" in rows[("churn", "freshness")] and "newest prediction" in rows[("churn", "freshness")]
    assert "OK" in rows[("diabetes", "freshness")]
    assert "OK" in rows[("churn", "process")]  # the simulator plays the model server
    # the simulator wrote logs, the daemon ingested them, and both children are gone
    assert list((short_tmp / "spool" / "churn" / "predictions").glob("predictions-*.jsonl"))
    assert "stopped cleanly" in (short_tmp / "daemon.log").read_text()
    offline = subprocess.run(
        [sys.executable, "-m", "daemon.cli", "--state-dir", str(short_tmp), "sql",
         "SELECT count(*) > 50 FROM predictions_churn", "--format", "csv"],
        capture_output=True, text=True, cwd=REPO, timeout=30,
    )
    assert offline.stdout.splitlines()[1] == "True"
