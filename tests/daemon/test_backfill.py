"""`modeltop backfill`: past windows replayed point in time, into the backfill tables, live state untouched."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from support import BASE_CONFIG, DaemonHandle, wait_for

CONFIG = BASE_CONFIG.replace('labels = "spool/churn/labels"', 'labels = "spool/churn/labels"\n'
                             'reference = "reference/churn.parquet"') + '''
[models.checks.drift]
interval = "1h"
window = "6h"

[models.checks.performance]
interval = "1h"
window = "2d"
min_labelled = 200
'''
ROWS_PER_HOUR = 300
LABEL_DELAY = timedelta(days=1)


def week_of_traffic(handle: DaemonHandle, since: datetime, drift_from: datetime) -> None:
    """A week of predictions (tenure shifts by 0.6 sd from `drift_from`), each labelled a day later."""
    rng = np.random.default_rng(11)
    n = 7 * 24 * ROWS_PER_HOUR
    times = [since + timedelta(seconds=float(s)) for s in np.sort(rng.uniform(0, 7 * 86400, n))]
    tenure = rng.normal(30, 10, n) + np.array([6.0 if t >= drift_from else 0.0 for t in times])
    contract = rng.choice(["monthly", "yearly"], n, p=[0.6, 0.4])
    truth = rng.random(n) < 0.3
    handle.write_predictions("churn", [
        {"ts": t.isoformat() + "Z", "request_id": f"r{i}", "prediction": str(int(y)),
         "features": {"tenure_months": float(x), "contract": str(c)}}
        for i, (t, x, c, y) in enumerate(zip(times, tenure, contract, truth, strict=True))])
    spool = handle.state_dir / "spool" / "churn" / "labels"
    spool.mkdir(parents=True, exist_ok=True)
    (spool / "a.jsonl").write_text("".join(
        json.dumps({"request_id": f"r{i}", "label": str(int(y)), "ts": (t + LABEL_DELAY).isoformat() + "Z"}) + "\n"
        for i, (t, y) in enumerate(zip(times, truth, strict=True)) if t + LABEL_DELAY < datetime.now(UTC).replace(
            tzinfo=None)))


def test_a_week_with_drift_from_day_four_alerts_in_the_first_window_after_it(short_tmp):
    handle = DaemonHandle(short_tmp, CONFIG)
    rng = np.random.default_rng(3)
    (handle.state_dir / "reference").mkdir(parents=True)
    pq.write_table(pa.table({"tenure_months": rng.normal(30, 10, 5000),
                             "contract": rng.choice(["monthly", "yearly"], 5000, p=[0.6, 0.4]),
                             "label": (rng.random(5000) < 0.3).astype(int).astype(str),
                             "prediction": (rng.random(5000) < 0.3).astype(int).astype(str)}),
                   handle.state_dir / "reference" / "churn.parquet")
    since = (datetime.now(UTC) - timedelta(days=8)).replace(tzinfo=None, minute=0, second=0, microsecond=0)
    until = since + timedelta(days=7)
    drift_from = since + timedelta(days=3, hours=2)  # day 4, 02:00
    week_of_traffic(handle, since, drift_from)
    handle.start()
    try:
        def stored() -> int:
            with handle.client() as client:
                return client.sql("SELECT count(*) FROM predictions_churn")["rows"][0][0]
        wait_for(lambda: stored() == 7 * 24 * ROWS_PER_HOUR, timeout=60, message="the week ingested")
        done = handle.cli("backfill", "churn", "--since", since.isoformat(), "--until", until.isoformat(),
                          "--every", "6h", "--json", timeout=300)
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert result["windows"] == 28 and result["state"] == "done"
        assert result["checks"] == ["freshness", "drift", "performance"]

        drift_alerts = [a for a in result["alerts"] if a["check"] == "drift"]
        # the window ending at day 4 06:00 is the first that holds drifted rows; the one before holds none
        assert [a["opened_at"] for a in drift_alerts] == [(since + timedelta(days=3, hours=6)).isoformat()]
        assert "tenure_months" in drift_alerts[0]["reason"] and drift_alerts[0]["resolved_at"] is None

        with handle.client() as client:
            runs = client.sql(f"""SELECT ts, status FROM backfill_check_runs
                                  WHERE backfill_id = {result['backfill_id']} AND "check" = 'performance'
                                  ORDER BY ts""")["rows"]
            live_alerts = client.sql("""SELECT count(*) FROM alerts WHERE "check" = 'drift'""")["rows"][0][0]
            live_runs = client.sql("SELECT count(*) FROM check_runs WHERE ts < now() - INTERVAL 1 DAY")["rows"][0][0]
        # point in time: labels arrive a day after their predictions, so the first day has none to judge
        statuses = {datetime.fromisoformat(ts).replace(tzinfo=None): status for ts, status in runs}
        assert all(s == "insufficient_data" for t, s in statuses.items() if t <= since + LABEL_DELAY)
        assert all(s == "ok" for t, s in statuses.items() if t >= since + LABEL_DELAY + timedelta(hours=12))
        assert live_alerts == 0 and live_runs == 0  # replaying the past did not touch the live state

        text = handle.cli("backfill", "churn", "--since", since.isoformat(), "--until", until.isoformat(),
                          "--every", "6h", "--check", "drift", timeout=300)
        assert text.returncode == 0, text.stderr
        assert "alerts that would have opened: 1" in text.stdout
        assert f"{since + timedelta(days=3, hours=6):%Y-%m-%d %H:%M}  -         drift  crit" in text.stdout

        refused = handle.cli("backfill", "churn", "--since", "2d", "--check", "labels_typo")
        assert refused.returncode == 2
        assert "model 'churn' has no check 'labels_typo' in its config" in refused.stderr
    finally:
        handle.stop()

    # with the daemon stopped the CLI writes to the store itself, with the same answer
    offline = handle.cli("backfill", "churn", "--since", since.isoformat(), "--until", until.isoformat(),
                         "--every", "6h", "--check", "drift", "--json", timeout=300)
    assert offline.returncode == 0, offline.stderr
    assert "daemon not running" in offline.stderr
    assert [a["opened_at"] for a in json.loads(offline.stdout)["alerts"]] == [a["opened_at"] for a in drift_alerts]


def test_sigterm_stops_a_backfill_between_windows_and_records_it(daemon_handle):
    daemon_handle.write_predictions("churn", [
        {"ts": (datetime.now(UTC) - timedelta(minutes=i)).isoformat(), "request_id": f"r{i}",
         "features": {"tenure_months": float(i % 50), "contract": "monthly"}} for i in range(5000)])
    daemon_handle.start()
    wait_for(lambda: daemon_handle.cli("sql", "SELECT count(*) FROM predictions_churn", "--format", "csv"
                                       ).stdout.split()[-1] == "5000", message="ingested")
    backfill = subprocess.Popen(  # a week at one-minute steps: far longer than the test waits
        [sys.executable, "-m", "daemon.cli", "--config", str(daemon_handle.config), "--state-dir",
         str(daemon_handle.state_dir), "backfill", "churn", "--since", "7d", "--every", "1m"],
        env=daemon_handle.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with daemon_handle.client() as client:
        wait_for(lambda: client.sql("SELECT count(*) FROM backfill_check_runs")["rows"][0][0] > 10, message="running")
    assert daemon_handle.stop() == 0
    out, err = backfill.communicate(timeout=30)
    assert backfill.returncode == 1, err  # not done
    recorded = daemon_handle.cli("sql", "SELECT state, windows FROM backfills", "--format", "csv")
    state, windows = recorded.stdout.split()[-1].split(",")
    assert state == "interrupted" and 10 < int(windows) < 7 * 24 * 60
