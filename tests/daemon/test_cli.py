"""The CLI as cron, Nagios and operators use it: exit codes, output formats, offline reading."""

from __future__ import annotations

import json

from support import prediction, wait_for


def _status_is(handle, wanted: str) -> bool:
    with handle.client() as client:
        return any(c["status"] == wanted for m in client.status()["models"] if m["name"] == "churn"
                   for c in m["checks"])


def test_status_exit_codes_follow_the_worst_check(running_daemon):
    wait_for(lambda: _status_is(running_daemon, "insufficient_data"), message="first run")
    healthy = running_daemon.cli("status")
    assert healthy.returncode == 0, healthy.stderr
    assert "@host" in healthy.stdout and "churn" in healthy.stdout and "N/A" in healthy.stdout

    running_daemon.write_predictions("churn", [prediction("late", age_s=120)])  # warn_after 60s
    wait_for(lambda: _status_is(running_daemon, "warn"), message="warn")
    warned = running_daemon.cli("status")
    assert warned.returncode == 1
    assert "WARN" in warned.stdout and "newest prediction 2m ago (limit 60s)" in warned.stdout
    assert "1 open alert" in warned.stdout

    running_daemon.stop()
    running_daemon.write_config(running_daemon.config.read_text().replace('warn_after = "60s"', 'warn_after = "10s"')
                                .replace('crit_after = "1h"', 'crit_after = "60s"'))
    running_daemon.start()
    wait_for(lambda: _status_is(running_daemon, "crit"), message="crit")
    critical = running_daemon.cli("status", "--json")
    assert critical.returncode == 2
    data = json.loads(critical.stdout)
    assert data["exit_code"] == 2


def test_status_when_the_daemon_is_down_reads_the_file_and_exits_3(running_daemon):
    wait_for(lambda: _status_is(running_daemon, "insufficient_data"), message="first run")
    running_daemon.stop()
    result = running_daemon.cli("status")
    assert result.returncode == 3
    assert "daemon not running; reading" in result.stderr and "read-only" in result.stderr
    assert "churn" in result.stdout and "freshness" in result.stdout  # the last recorded state


def test_status_exits_3_when_nothing_is_there(daemon_handle):
    result = daemon_handle.cli("status")
    assert result.returncode == 3
    assert "no daemon socket" in result.stderr and "no store at" in result.stderr


def test_sql_formats_and_offline_mode(running_daemon):
    running_daemon.write_predictions("churn", [prediction("a"), prediction("b", contract="two-year")])
    with running_daemon.client() as client:
        wait_for(lambda: client.sql("SELECT count(*) FROM predictions_churn")["rows"][0][0] == 2, message="ingest")
    query = "SELECT request_id, contract FROM predictions_churn ORDER BY request_id"
    table = running_daemon.cli("sql", query)
    assert table.returncode == 0
    assert table.stdout.splitlines()[0].split() == ["request_id", "contract"]
    csv_out = running_daemon.cli("sql", query, "--format", "csv")
    assert csv_out.stdout == "request_id,contract\na,one-year\nb,two-year\n"
    as_json = running_daemon.cli("sql", query, "--format", "json")
    assert json.loads(as_json.stdout) == [{"request_id": "a", "contract": "one-year"},
                                          {"request_id": "b", "contract": "two-year"}]
    refused = running_daemon.cli("sql", "DELETE FROM predictions_churn")
    assert refused.returncode == 1 and "rejected" in refused.stderr

    running_daemon.stop()
    offline = running_daemon.cli("sql", query, "--format", "csv")
    assert offline.returncode == 0 and offline.stdout == csv_out.stdout
    assert "daemon not running" in offline.stderr
    assert running_daemon.cli("sql", "DROP TABLE alerts").returncode == 1


def test_snapshot_while_the_daemon_writes(running_daemon, short_tmp):
    running_daemon.write_predictions("churn", [prediction(f"r{i}") for i in range(50)])
    with running_daemon.client() as client:
        wait_for(lambda: client.sql("SELECT count(*) FROM predictions_churn")["rows"][0][0] == 50, message="ingest")
    result = running_daemon.cli("snapshot", str(short_tmp / "copy.duckdb"))
    assert result.returncode == 0, result.stderr
    assert "duckdb -readonly" in result.stdout
    import duckdb
    con = duckdb.connect(str(short_tmp / "copy.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM predictions_churn").fetchone() == (50,)
    again = running_daemon.cli("snapshot", str(short_tmp / "copy.duckdb"))
    assert again.returncode == 1 and "exists" in again.stderr
