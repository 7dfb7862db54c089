"""Crash safety, as a test rather than a promise: SIGKILL the daemon mid-ingest again and again; in the end
the table holds exactly the offered rows, none missing, none doubled, and nothing was read twice."""

from __future__ import annotations

import random
import signal
import threading
import time

import duckdb

from support import BASE_CONFIG, DaemonHandle, wait_for

FILES, ROWS_PER_FILE, TAIL_ROWS = 8, 25_000, 10_000
CONFIG = BASE_CONFIG.replace('ingest_interval = "200ms"', 'ingest_interval = "50ms"')


def write_spool(handle: DaemonHandle) -> None:
    spool = handle.state_dir / "spool" / "churn" / "predictions"
    spool.mkdir(parents=True)
    con = duckdb.connect()
    for f in range(FILES):
        con.execute(f"""COPY (SELECT 1700000000 + i AS ts, 'f{f}-' || i AS request_id, (i % 2)::VARCHAR AS prediction,
                               {{'tenure_months': i % 72, 'contract': 'one-year'}} AS features
                        FROM range({ROWS_PER_FILE}) t(i))
                        TO '{spool}/p{f:02d}.jsonl' (FORMAT json)""")


def append_slowly(path, stop: threading.Event) -> None:
    """A live server: appends lines in bursts, often leaving a partial line until the next burst."""
    rng = random.Random(7)
    pending = b""
    with open(path, "ab") as fh:
        for i in range(TAIL_ROWS):
            pending += b'{"ts": %d, "request_id": "tail-%d", "features": {"tenure_months": 1}}\n' % (1700000000 + i, i)
            if len(pending) > 4000 or i == TAIL_ROWS - 1:
                cut = len(pending) if i == TAIL_ROWS - 1 else rng.randrange(len(pending))
                fh.write(pending[:cut])
                fh.flush()
                pending = pending[cut:]
                time.sleep(0.002)
            if stop.is_set():
                return


def test_sigkill_at_random_moments_loses_and_doubles_nothing(short_tmp):
    handle = DaemonHandle(short_tmp, CONFIG)
    write_spool(handle)
    stop = threading.Event()
    tail = handle.state_dir / "spool" / "churn" / "predictions" / "p99-live.jsonl"
    appender = threading.Thread(target=append_slowly, args=(tail, stop))
    rng = random.Random(42)
    kills = 0
    progress: list[int] = []
    try:
        appender.start()
        for _ in range(6):
            handle.start()
            time.sleep(rng.uniform(0.05, 0.8))
            handle.proc.send_signal(signal.SIGKILL)
            handle.proc.wait(10)
            kills += 1
            con = duckdb.connect(str(handle.state_dir / "modeltop.duckdb"), read_only=True)
            progress.append(con.execute("SELECT count(*) FROM predictions_churn").fetchone()[0])
            con.close()
        appender.join(60)
        handle.start()
        expected = FILES * ROWS_PER_FILE + TAIL_ROWS
        with handle.client() as client:
            def count() -> int:
                return client.sql("SELECT count(*) FROM predictions_churn")["rows"][0][0]
            wait_for(lambda: count() >= expected, timeout=90, message=f"{expected} rows")
            time.sleep(0.5)  # a few more polls: nothing more may arrive
            total, distinct = client.sql(
                "SELECT count(*), count(DISTINCT request_id) FROM predictions_churn")["rows"][0]
            assert (total, distinct) == (expected, expected)
            assert client.sql("SELECT count(*) FROM quarantine")["rows"] == [[0]]  # nothing re-read, nothing bad
        assert kills >= 5
        # the kills really landed mid-ingest: the store was caught part-way, and growing
        assert any(0 < n < expected for n in progress), progress
    finally:
        stop.set()
        appender.join(10)
        handle.stop()
