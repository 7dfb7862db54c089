"""The store: migrations, typed model tables, read-only SQL and snapshots."""

from __future__ import annotations

import duckdb
import pytest

from daemon.store.db import Store, ensure_model_tables, migrate, open_read_only, schema_version, utcnow
from daemon.store.migrations import LATEST
from daemon.store.readonly_sql import SqlFailed, SqlRejected, run_query
from daemon.store.snapshot import write_snapshot

TABLES = {"schema_version", "models", "model_versions", "labels", "metrics", "check_runs", "alerts", "actions",
          "ingest_offsets", "quarantine", "backfills", "backfill_metrics", "backfill_check_runs", "backfill_alerts"}


def tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}


def test_empty_store_is_migrated_to_latest(tmp_path):
    store = Store(tmp_path / "m.duckdb")
    cur = store.cursor()
    assert schema_version(cur) == LATEST
    assert store.applied == list(range(1, LATEST + 1))
    assert TABLES <= tables(cur)
    store.close()
    again = Store(tmp_path / "m.duckdb")
    assert again.applied == []  # nothing to do the second time
    again.close()


def test_previous_version_store_is_migrated_and_keeps_its_data(tmp_path):
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    migrate(con, target=LATEST - 1)
    assert schema_version(con) == LATEST - 1 and "backfills" not in tables(con)
    con.execute("""INSERT INTO metrics VALUES (now()::TIMESTAMP, 'churn', 'freshness', 'age_seconds', '{}', 4.5)""")
    con.close()
    store = Store(path)
    cur = store.cursor()
    assert store.applied == [LATEST]
    assert schema_version(cur) == LATEST and TABLES <= tables(cur)
    assert cur.execute("SELECT value FROM metrics").fetchall() == [(4.5,)]
    store.close()


def test_newer_store_is_refused_with_advice(tmp_path):
    path = tmp_path / "new.duckdb"
    con = duckdb.connect(str(path))
    migrate(con)
    con.execute("INSERT INTO schema_version VALUES (?, 'from the future', now()::TIMESTAMP)", [LATEST + 1])
    con.close()
    with pytest.raises(Exception, match="newer than this modeltop understands"):
        Store(path)


def test_model_table_is_typed_and_widened_when_a_feature_is_added(tmp_path):
    store = Store(tmp_path / "m.duckdb")
    with store.transaction() as cur:
        ensure_model_tables(cur, "churn", "classification", {"age": "DOUBLE", "plan": "VARCHAR"})
    with store.transaction() as cur:
        ensure_model_tables(cur, "churn", "classification", {"age": "DOUBLE", "plan": "VARCHAR", "calls": "BIGINT"})
    columns = dict(store.cursor().execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'predictions_churn'"
    ).fetchall())
    assert columns["age"] == "DOUBLE" and columns["plan"] == "VARCHAR" and columns["calls"] == "BIGINT"
    assert columns["ts"] == "TIMESTAMP" and columns["prediction"] == "VARCHAR"
    store.close()


def test_failed_transaction_leaves_nothing_behind(tmp_path):
    store = Store(tmp_path / "m.duckdb")
    with pytest.raises(RuntimeError), store.transaction() as cur:
        cur.execute("INSERT INTO metrics VALUES (now()::TIMESTAMP, 'm', 'c', 'x', '{}', 1)")
        raise RuntimeError("crash mid-write")
    assert store.cursor().execute("SELECT count(*) FROM metrics").fetchone() == (0,)
    store.close()


def test_read_only_query_times_out_instead_of_running_forever(tmp_path):
    store = Store(tmp_path / "m.duckdb")
    with store.adhoc_cursor() as cur:
        with pytest.raises(SqlFailed, match="interrupted after the 0.3s limit"):
            run_query(cur, "SELECT count(*) FROM range(100000000000) a, range(10) b WHERE a.range % 7 = b.range",
                      max_rows=10, timeout_s=0.3)
        # the cursor (and the store) still work afterwards
        assert run_query(cur, "SELECT 42 AS answer", 10, 5).rows == [[42]]
    store.close()


def test_read_only_results_are_capped(tmp_path):
    store = Store(tmp_path / "m.duckdb")
    with store.adhoc_cursor() as cur:
        result = run_query(cur, "SELECT * FROM range(100)", max_rows=7, timeout_s=5)
        assert len(result.rows) == 7 and result.truncated and "capped at 7" in result.notes[0]
        with pytest.raises(SqlRejected, match="one statement at a time"):
            run_query(cur, "SELECT 1; SELECT 2", 10, 5)
    store.close()


def test_snapshot_is_a_complete_database_the_duckdb_shell_can_open(tmp_path):
    store = Store(tmp_path / "state" / "m.duckdb")
    with store.transaction() as cur:
        cur.execute("INSERT INTO metrics VALUES (?, 'churn', 'freshness', 'age_seconds', '{}', 1.5)", [utcnow()])
    with store.adhoc_cursor() as cur:
        assert write_snapshot(cur, store.path, tmp_path / "snap.duckdb") > 0
        with pytest.raises(FileExistsError):
            write_snapshot(cur, store.path, tmp_path / "snap.duckdb")
    store.close()
    snap = open_read_only(tmp_path / "snap.duckdb")
    assert snap.execute("SELECT value FROM metrics").fetchall() == [(1.5,)]
    assert TABLES <= tables(snap)
    assert not list((tmp_path / "state" / "snapshots").iterdir())  # no leftovers
