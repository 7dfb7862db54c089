"""Ingest figures per model (rows/s, bytes/s, quarantined, lag from file write to row visible), written
to the metrics table under check "ingest".

Written only when something was ingested, and at most every `every_s` (the daemon uses five ingest
intervals, 10 s by default): an idle spool costs nothing, a busy one a row set every few seconds.
"""

from __future__ import annotations

import json
import time

from daemon.ingest.spool import IngestReport
from daemon.store.db import Store, utcnow


class IngestMeter:
    def __init__(self, store: Store, model: str, every_s: float = 10.0) -> None:
        self.store, self.model, self.every_s = store, model, every_s
        self.rows = self.bytes = self.quarantined = self.duplicates = 0
        self.rows_total = self.quarantined_total = 0
        self.lag_s = 0.0
        self.since = time.monotonic()

    def add(self, report: IngestReport) -> None:
        self.rows += report.rows
        self.bytes += report.bytes
        self.quarantined += report.quarantined
        self.duplicates += report.duplicates
        self.lag_s = max(self.lag_s, report.lag_s)
        if self.rows or self.quarantined:
            elapsed = time.monotonic() - self.since
            if elapsed >= self.every_s:
                self.flush(elapsed)

    def flush(self, elapsed: float) -> None:
        self.rows_total += self.rows
        self.quarantined_total += self.quarantined
        figures = {
            "rows_per_second": self.rows / elapsed, "bytes_per_second": self.bytes / elapsed,
            "quarantined": float(self.quarantined), "duplicates": float(self.duplicates),
            "rows_total": float(self.rows_total), "quarantined_total": float(self.quarantined_total),
            "lag_seconds": self.lag_s,
        }
        ts = utcnow()
        with self.store.transaction() as cur:
            cur.execute('INSERT INTO metrics (ts, model, "check", metric, dims, value) VALUES '
                        + ", ".join(["(?, ?, 'ingest', ?, ?, ?)"] * len(figures)),
                        [v for name, value in figures.items() for v in (ts, self.model, name, json.dumps({}), value)])
        self.rows = self.bytes = self.quarantined = self.duplicates = 0
        self.lag_s = 0.0
        self.since = time.monotonic()
