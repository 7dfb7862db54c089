"""Retention on a real store: old rows go in small batches, new ones stay, and the file stays bounded."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from daemon.config import ConfigError, load_config
from daemon.store import retention
from daemon.store.db import Store, ensure_model_tables, utcnow
from support import BASE_CONFIG

DAY = 86400.0


def add_predictions(store: Store, model: str, end: datetime, rows: int, span: timedelta, tag: str) -> None:
    """`rows` predictions evenly spread over `span` up to `end`."""
    with store.transaction() as cur:
        cur.execute(
            f"""INSERT INTO predictions_{model} BY NAME
                SELECT ?::TIMESTAMP - to_microseconds((i * ? / ?)::BIGINT) AS ts, '{tag}' || i AS request_id,
                       ?::TIMESTAMP AS ingested_at, random() AS x
                FROM range(?) t(i)""",
            [end, span / timedelta(microseconds=1), rows, end, rows])


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "modeltop.duckdb")
    with store.transaction() as cur:
        for model in ("churn", "retired"):  # `retired` is no longer configured: its old rows go too
            ensure_model_tables(cur, model, "classification", {"x": "DOUBLE"})
    yield store
    store.close()


def test_only_rows_past_retention_go_oldest_first_in_several_batches(store):
    now = utcnow()
    old, recent = now - timedelta(days=40), now - timedelta(days=1)
    add_predictions(store, "churn", old, 5000, timedelta(days=5), "old")  # 40-45 days old
    add_predictions(store, "churn", recent, 700, timedelta(days=20), "new")  # 1-21 days old
    add_predictions(store, "retired", old, 300, timedelta(hours=1), "old")
    with store.transaction() as cur:
        for when in (old, recent):
            cur.execute("INSERT INTO labels VALUES ('churn', 'r', '1', ?, ?)", [when, when])
            cur.execute("INSERT INTO quarantine VALUES (?, 'churn', 'predictions', 'a.jsonl', 1, '{', 'bad')", [when])
        for when in (now - timedelta(days=500), now - timedelta(days=40)):  # metrics keep 400 days
            cur.execute("""INSERT INTO metrics VALUES (?, 'churn', 'freshness', 'age_seconds', '{}', 1.0)""", [when])
            cur.execute("""INSERT INTO check_runs (ts, model, "check", status, reason, duration_s)
                           VALUES (?, 'churn', 'freshness', 'ok', 'fine', 0.01)""", [when])
            for state, resolved in (("resolved", when), ("open", None)):
                cur.execute("""INSERT INTO alerts (model, "check", severity, state, reason, opened_at,
                                                   last_seen_at, resolved_at)
                               VALUES ('churn', 'freshness', 'warn', ?, 'late', ?, ?, ?)""",
                            [state, when, when, resolved])

    report = retention.purge(store, 30 * DAY, 400 * DAY, batch_rows=1000, pause_s=0, now=now)

    cur = store.cursor()
    assert report.deleted["predictions_churn"] == 5000 and report.deleted["predictions_retired"] == 300
    assert report.batches >= 5  # 5000 rows at about 1000 a DELETE
    assert cur.execute("SELECT count(*), min(request_id) FROM predictions_churn").fetchone() == (700, "new0")
    assert cur.execute("SELECT count(*) FROM predictions_retired").fetchone()[0] == 0
    for table in ("labels", "quarantine"):
        assert cur.execute(f"SELECT count(*), min(ts) FROM {table}").fetchone() == (1, recent)
    for table in ("metrics", "check_runs"):
        assert cur.execute(f"SELECT min(ts) FROM {table}").fetchone()[0] == now - timedelta(days=40)
    # the 500-day-old open alert stays (it is not over); the resolved one goes
    assert sorted(cur.execute("SELECT state, opened_at < ? FROM alerts", [now - timedelta(days=400)]).fetchall()) \
        == [("open", False), ("open", True), ("resolved", False)]
    again = retention.purge(store, 30 * DAY, 400 * DAY, batch_rows=1000, pause_s=0, now=now)
    assert again.rows == 0 and again.batches == 0


def test_a_stop_request_ends_the_run_between_batches_and_the_next_run_goes_on(store):
    now = utcnow()
    add_predictions(store, "churn", now - timedelta(days=31), 3000, timedelta(days=3), "old")
    asked = iter([False, False, True])
    first = retention.purge(store, 30 * DAY, 400 * DAY, batch_rows=1000, pause_s=0, now=now,
                            should_stop=lambda: next(asked, True))
    assert first.stopped and 0 < first.rows < 3000
    second = retention.purge(store, 30 * DAY, 400 * DAY, batch_rows=1000, pause_s=0, now=now)
    assert first.rows + second.rows == 3000


def test_the_file_stays_bounded_when_old_rows_are_purged(store):
    size = store.path.stat

    def age_everything() -> None:  # the day passes: what was written is now past retention
        with store.transaction() as cur:
            cur.execute("UPDATE predictions_churn SET ts = ts - INTERVAL 60 DAY")

    add_predictions(store, "churn", utcnow(), 200_000, timedelta(days=1), "a")
    store.cursor().execute("CHECKPOINT")
    full = size().st_size
    for day in range(3):
        age_everything()
        report = retention.purge(store, 30 * DAY, 400 * DAY, pause_s=0, checkpoint_after=1)
        assert report.rows == 200_000 and report.checkpointed
        add_predictions(store, "churn", utcnow(), 200_000, timedelta(days=1), f"b{day}")
        store.cursor().execute("CHECKPOINT")
    assert size().st_size <= full * 1.25  # without the purges: 3x (measured)


def test_retention_keys_default_and_are_validated(tmp_path):
    config = tmp_path / "modeltop.toml"
    config.write_text(BASE_CONFIG)
    settings = load_config(config).daemon
    assert (settings.retention, settings.metrics_retention) == (30 * DAY, 400 * DAY)
    config.write_text(BASE_CONFIG.replace("[daemon]", '[daemon]\nretention = "7d"\nmetrics_retention = "2w"'))
    settings = load_config(config).daemon
    assert (settings.retention, settings.metrics_retention) == (7 * DAY, 14 * DAY)
    for line, key, words in (('retention = "30 days"', "daemon.retention", "'30 days'"),
                             ("retention = 30", "daemon.retention", "at least 1h"),
                             ('metrics_retention = "10m"', "daemon.metrics_retention", "at least 1h")):
        config.write_text(BASE_CONFIG.replace("[daemon]", f"[daemon]\n{line}"))
        with pytest.raises(ConfigError) as err:
            load_config(config)
        assert err.value.key == key and words in str(err.value)
