"""The daemon end to end, in a subprocess with a temp state dir, driven as systemd and operators drive it."""

from __future__ import annotations

import json
import signal
import socket
import time

import pytest

from daemon.client import ApiError, DaemonUnreachable
from support import BASE_CONFIG, prediction, wait_for


def test_status_over_the_socket_lists_every_configured_check(running_daemon):
    with running_daemon.client() as client:
        health = client.health()
        assert health["status"] == "ok" and health["models"] == ["churn"]
        status = wait_for(lambda: _all_ran(client.status()), message="first check runs")
    by_name = {m["name"]: m for m in status["models"]}
    assert by_name["@host"]["checks"][0]["check"] == "host"
    assert by_name["@host"]["checks"][0]["status"] == "ok"
    churn = by_name["churn"]["checks"][0]
    assert churn["check"] == "freshness" and churn["status"] == "insufficient_data"
    assert churn["reason"] == "no prediction logged yet"


def _all_ran(status):
    return status if all(c["status"] != "pending" for m in status["models"] for c in m["checks"]) else None


def test_predictions_are_ingested_and_bad_lines_quarantined(running_daemon):
    path = running_daemon.write_predictions("churn", [prediction("r1"), prediction("r2", age_s=1)])
    with open(path, "a") as fh:
        fh.write('{"ts": "2026-01-01T00:00:00+00:00", "request_id": "r3", "features": {"tenure_months": "lots"}}\n')
        fh.write("{not json\n")
        fh.write(json.dumps(prediction("r1")) + "\n")  # duplicate request_id
        fh.write('{"ts": "2026-01-01T00:00:00+00:00", "request_id": "r4"')  # partial line: must wait
    with running_daemon.client() as client:
        wait_for(lambda: client.sql("SELECT count(*) FROM quarantine")["rows"][0][0] == 3, message="quarantine")
        rows = client.sql("SELECT request_id, tenure_months, contract FROM predictions_churn ORDER BY 1")["rows"]
        assert rows == [["r1", 12.0, "one-year"], ["r2", 12.0, "one-year"]]
        reasons = {r[0] for r in client.sql("SELECT reason FROM quarantine")["rows"]}
        assert reasons == {"tenure_months 'lots' is not a number", "broken JSON: Expecting property name enclosed "
                           "in double quotes at column 2", "duplicate request_id"}
        churn = next(m for m in client.status()["models"] if m["name"] == "churn")
        assert churn["quarantined"] == {"tenure_months … is not a number": 1, "duplicate request_id": 1,
                                        "broken JSON: Expecting property name enclosed in double quotes at column 2": 1}
        shown = running_daemon.cli("status").stdout
        assert "churn: 3 records quarantined (" in shown
        with open(path, "a") as fh:
            fh.write(', "prediction": "0"}\n')  # the partial line completes
        wait_for(lambda: client.sql("SELECT count(*) FROM predictions_churn")["rows"][0][0] == 3, message="r4")
        status = wait_for(lambda: next((
            c for m in client.status()["models"] if m["name"] == "churn" for c in m["checks"]
            if c["status"] == "ok"), None), message="freshness ok")
        assert status["reason"].startswith("newest prediction")
        # ingest reports its own figures (every 5 ingest intervals while there is traffic)
        running_daemon.write_predictions("churn", [prediction("r5")])
        def reported() -> dict | None:  # a report may predate r4; wait for one that counts it
            figures = dict(client.sql(
                """SELECT metric, max(value) FROM metrics WHERE model = 'churn' AND "check" = 'ingest' GROUP BY ALL"""
            )["rows"])
            return figures if figures.get("rows_total", 0) >= 3 else None

        figures = wait_for(reported, message="ingest metrics")
        assert figures["quarantined_total"] >= 3 and figures["lag_seconds"] >= 0
        assert {"rows_per_second", "bytes_per_second", "duplicates"} <= set(figures)


def test_stale_model_opens_an_alert_and_fresh_traffic_resolves_it(running_daemon):
    running_daemon.write_predictions("churn", [prediction("old", age_s=600)])  # warn_after is 60s
    with running_daemon.client() as client:
        alert = wait_for(lambda: client.alerts(), message="alert opened")[0]
        assert alert["model"] == "churn" and alert["check"] == "freshness"
        assert alert["severity"] == "warn" and alert["state"] == "open"
        ack = client.action("acknowledge", model="churn", alert_id=alert["id"])
        assert ack["status"] == "ok"
        assert client.alerts()[0]["state"] == "acknowledged"
        running_daemon.write_predictions("churn", [prediction("new")])
        wait_for(lambda: not client.alerts(), message="alert resolved")
        resolved = client.alerts(state="resolved")[0]
        assert resolved["id"] == alert["id"] and resolved["resolved_at"]
        audit = client.sql("SELECT action, status, actor, params FROM actions")["rows"]
        assert audit[0][0:2] == ["acknowledge", "ok"] and json.loads(audit[0][3]) == {"alert_id": alert["id"]}


def test_unknown_action_is_rejected_clearly_and_audited(running_daemon):
    with running_daemon.client() as client:
        answer = client.action("retrain", model="churn")
        assert answer["status"] == "rejected"
        assert answer["detail"] == "unknown action 'retrain'; known actions: acknowledge, backfill"
        assert client.sql("SELECT action, status FROM actions")["rows"] == [["retrain", "rejected"]]


REFUSED = {
    "INSERT": "INSERT INTO metrics VALUES (now()::TIMESTAMP, 'm', 'c', 'x', '{}', 1)",
    "DELETE": "DELETE FROM metrics",
    "DROP": "DROP TABLE alerts",
    "UPDATE": "UPDATE alerts SET state = 'resolved'",
    "CREATE": "CREATE TABLE x (a INT)",
    "COPY": "COPY metrics TO '/tmp/stolen.csv'",
    "ATTACH": "ATTACH '/tmp/other.duckdb' AS other",
    "INSTALL": "INSTALL httpfs",
    "LOAD": "LOAD httpfs",
    "SET": "SET enable_external_access = true",
    "PRAGMA": "PRAGMA enable_profiling",
    "EXPORT": "EXPORT DATABASE '/tmp/exported'",
    "CHECKPOINT": "CHECKPOINT",
    "two statements": "SELECT 1; DROP TABLE alerts",
}


def test_sql_is_read_only(running_daemon):
    with running_daemon.client() as client:
        for name, query in REFUSED.items():
            with pytest.raises(ApiError) as info:
                client.sql(query)
            assert info.value.status == 403, (name, str(info.value))
            assert "rejected" in str(info.value), name
        # a file-reading table function is a SELECT, but DuckDB's lockdown stops it outside the state dirs
        for reader in ("read_csv('/etc/passwd')", "read_text('/etc/hostname')", "read_json('/etc/os-release')"):
            with pytest.raises(ApiError, match="disabled by configuration|Permission") as info:
                client.sql(f"SELECT * FROM {reader}")
            assert info.value.status == 400
        assert client.sql("SELECT count(*) AS n FROM alerts")["rows"] == [[0]]
        result = client.sql("SELECT current_setting('enable_external_access') AS access")
        assert result["rows"] == [[False]]


def test_sigterm_exits_zero_within_ten_seconds_and_checkpoints(running_daemon):
    running_daemon.write_predictions("churn", [prediction("r1")])
    with running_daemon.client() as client:
        wait_for(lambda: client.sql("SELECT count(*) FROM predictions_churn")["rows"][0][0] == 1, message="ingest")
    started = time.monotonic()
    assert running_daemon.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 10
    assert not running_daemon.socket.exists()
    assert not (running_daemon.state_dir / "modeltop.duckdb.wal").exists()  # checkpointed
    assert "stopped cleanly" in running_daemon.log_text()
    with pytest.raises(DaemonUnreachable):
        running_daemon.client().health()


def test_sighup_applies_a_valid_config_and_keeps_the_old_one_when_invalid(running_daemon):
    with running_daemon.client() as client:
        assert client.health()["models"] == ["churn"]
        running_daemon.write_config(BASE_CONFIG + '\n[[models]]\nname = "fraud"\npredictions = "spool/fraud"\n'
                                    '[models.checks.freshness]\ninterval = "1s"\n')
        running_daemon.proc.send_signal(signal.SIGHUP)
        health = wait_for(lambda: (h := client.health())["reloads"] == 1 and h, message="reload")
        assert health["models"] == ["churn", "fraud"]
        wait_for(lambda: any(m["name"] == "fraud" for m in client.status()["models"]), message="fraud checks")
        assert (running_daemon.state_dir / "spool" / "fraud").is_dir()

        running_daemon.write_config(BASE_CONFIG.replace('interval = "1s"', 'interval = "every now and then"'))
        running_daemon.proc.send_signal(signal.SIGHUP)
        health = wait_for(lambda: (h := client.health())["last_reload_error"] and h, message="rejected reload")
        assert "host.checks.host.interval" in health["last_reload_error"]
        assert health["models"] == ["churn", "fraud"] and health["reloads"] == 1
        assert health["status"] == "ok"
    assert "config reload rejected, keeping the running config" in running_daemon.log_text()


def test_systemd_notify_ready_watchdog_status_and_stopping(daemon_handle, short_tmp):
    address = str(short_tmp / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(address)
    listener.settimeout(0.5)
    daemon_handle.start(NOTIFY_SOCKET=address, WATCHDOG_USEC="400000")
    messages: list[str] = []

    def received(word: str) -> bool:
        try:
            messages.append(listener.recv(4096).decode())
        except TimeoutError:
            pass
        return sum(word in m for m in messages)

    assert wait_for(lambda: received("READY=1"), message="READY=1")
    ready = next(m for m in messages if "READY=1" in m)
    assert "STATUS=1 models, 2 checks" in ready
    assert wait_for(lambda: received("WATCHDOG=1") >= 3, message="three WATCHDOG=1 pings")
    daemon_handle.stop()
    assert wait_for(lambda: received("STOPPING=1"), message="STOPPING=1")
    listener.close()


def test_second_daemon_on_the_same_state_dir_refuses_to_start(running_daemon, short_tmp):
    from support import DaemonHandle
    (short_tmp / "other").mkdir()
    other = DaemonHandle(short_tmp / "other", running_daemon.config.read_text())
    other.state_dir = running_daemon.state_dir
    other.start(wait=False)
    assert other.proc.wait(20) != 0
    assert "Is another modeltop daemon using it?" in other.log_text()
    assert running_daemon.client().health()["status"] == "ok"


def test_sigterm_interrupts_a_long_ad_hoc_query(daemon_handle):
    daemon_handle.write_config(BASE_CONFIG.replace('log_level = "debug"', 'log_level = "debug"\nsql_timeout = "5m"'))
    daemon_handle.start()
    import threading
    answers: list[object] = []

    def heavy() -> None:
        try:
            answers.append(daemon_handle.client().sql(
                "SELECT count(*) FROM range(100000000000) a, range(10) b WHERE a.range % 7 = b.range"))
        except Exception as exc:  # noqa: BLE001 - whatever the client saw is the answer
            answers.append(exc)

    worker = threading.Thread(target=heavy)
    worker.start()
    time.sleep(1.0)  # the query is running now
    started = time.monotonic()
    assert daemon_handle.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 10
    worker.join(10)
    assert answers and not isinstance(answers[0], dict)  # the query did not complete
