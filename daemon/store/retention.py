"""Retention: rows past their age leave the store in small batches, so the file stays bounded.

Two ages (`[daemon]` in config): `retention` (default 30d) for raw data — every `predictions_<model>`
table (models no longer configured included), `labels` and `quarantine`, by their `ts` — and
`metrics_retention` (default 400d) for what checks produced — `metrics`, `check_runs`, and alerts that are
resolved (by `resolved_at`; open and acknowledged alerts stay however old). The `actions` audit log and
`ingest_offsets` are kept.

Each DELETE takes the oldest slice of one table — a time range sized to hold about `batch_rows` rows,
adapted from the previous slice — in its own short transaction, then pauses, so ingest and check runs
(which share the store's write lock) wait at most one small DELETE. When much was deleted a CHECKPOINT
follows: DuckDB reuses the blocks freed by deleted rows only after a checkpoint, so that is what keeps the
file from growing past what the retained rows need.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import duckdb

from daemon.store.db import Store, quote_ident, utcnow

log = logging.getLogger("modeltop.retention")

BATCH_ROWS = 50_000  # ~20 ms of DELETE each: what another writer may have to wait
PAUSE_S = 0.05  # between batches, so waiting writers get the lock
CHECKPOINT_AFTER_ROWS = 100_000
FIRST_SLICE_S = 3600.0
MAX_SLICE_S = 30 * 86400.0


@dataclass(frozen=True)
class Target:
    table: str
    column: str
    cutoff: datetime
    where: str = ""  # an extra condition, e.g. only resolved alerts


@dataclass
class RetentionReport:
    deleted: dict[str, int] = field(default_factory=dict)  # table -> rows
    batches: int = 0
    checkpointed: bool = False
    seconds: float = 0.0
    stopped: bool = False  # asked to stop before it was done; the next run goes on

    @property
    def rows(self) -> int:
        return sum(self.deleted.values())


def targets(cur: duckdb.DuckDBPyConnection, retention_s: float, metrics_retention_s: float,
            now: datetime) -> list[Target]:
    raw_cutoff = now - timedelta(seconds=retention_s)
    derived_cutoff = now - timedelta(seconds=metrics_retention_s)
    tables = [r[0] for r in cur.execute(
        """SELECT table_name FROM information_schema.tables
           WHERE table_schema = 'main' AND table_name IN (SELECT 'predictions_' || name FROM models)
           ORDER BY table_name"""
    ).fetchall()]
    return [
        *(Target(t, "ts", raw_cutoff) for t in tables),
        Target("labels", "ts", raw_cutoff),
        Target("quarantine", "ts", raw_cutoff),
        Target("metrics", "ts", derived_cutoff),
        Target("check_runs", "ts", derived_cutoff),
        Target("alerts", "resolved_at", derived_cutoff, "state = 'resolved'"),
    ]


def purge(store: Store, retention_s: float, metrics_retention_s: float, *, now: datetime | None = None,
          batch_rows: int = BATCH_ROWS, pause_s: float = PAUSE_S,
          checkpoint_after: int = CHECKPOINT_AFTER_ROWS,
          should_stop: Callable[[], bool] = lambda: False) -> RetentionReport:
    """Delete what is past retention, oldest first, in batches; never raises for a busy store."""
    started = time.perf_counter()
    report = RetentionReport()
    for target in targets(store.cursor(), retention_s, metrics_retention_s, now or utcnow()):
        if should_stop():
            report.stopped = True
            break
        _purge(store, target, batch_rows, pause_s, should_stop, report)
    if report.rows >= checkpoint_after and not report.stopped:
        try:
            with store.write_lock:
                store.cursor().execute("CHECKPOINT")
            report.checkpointed = True
        except duckdb.Error as exc:  # the automatic checkpoint will come; nothing is lost
            log.warning("retention: checkpoint after deleting %d rows failed: %s", report.rows, exc)
    report.seconds = time.perf_counter() - started
    return report


def _purge(store: Store, target: Target, batch_rows: int, pause_s: float, should_stop: Callable[[], bool],
           report: RetentionReport) -> None:
    table, column = quote_ident(target.table), quote_ident(target.column)
    extra = f" AND ({target.where})" if target.where else ""
    width = FIRST_SLICE_S
    while True:
        if should_stop():
            report.stopped = True
            return
        oldest = store.cursor().execute(
            f"SELECT min({column}) FROM {table} WHERE {column} < ?{extra}", [target.cutoff]).fetchone()[0]
        if oldest is None:
            return
        end = min(oldest + timedelta(seconds=width), target.cutoff)
        with store.transaction() as tx:
            deleted = tx.execute(f"DELETE FROM {table} WHERE {column} < ?{extra}", [end]).fetchone()[0]
        report.deleted[target.table] = report.deleted.get(target.table, 0) + deleted
        report.batches += 1
        # Aim the next slice at about batch_rows rows; grow at most 8x a step (traffic is uneven).
        width = min(max(width * batch_rows / max(deleted, 1), 1.0), width * 8, MAX_SLICE_S)
        if pause_s:
            time.sleep(pause_s)
