"""The fast (DuckDB reader) and the line-by-line paths must agree, and nothing offered is ever lost.

Property-based: hypothesis throws random records and random bytes at the reader.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.config import ModelConfig
from daemon.ingest import SpoolReader
from daemon.store.db import Store, ensure_model_tables

FEATURES = {"age": "DOUBLE", "calls": "BIGINT", "plan": "VARCHAR", "vip": "BOOLEAN"}

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                    st.floats(allow_nan=False, allow_infinity=False, width=32), st.text(max_size=8),
                    st.sampled_from(["3", "2.5", "true", "x", "", "\ud800", 2**70, 3.4e38, -(2**63)]))
timestamps = st.one_of(st.sampled_from(["2026-01-01T00:00:00+00:00", "2026-01-01T00:00:00Z",
                                        "2026-01-01T00:00:00", "yesterday", "2026-13-01T00:00:00Z"]),
                       st.integers(0, 2_000_000_000), st.none(), st.booleans())
records = st.fixed_dictionaries(
    {"ts": timestamps, "request_id": st.one_of(st.text(min_size=0, max_size=6), st.integers(0, 99), st.none())},
    optional={"prediction": scalars, "score": st.one_of(scalars, st.just({"a": 0.2})), "latency_ms": scalars,
              "error": scalars, "features": st.one_of(st.dictionaries(st.sampled_from(list(FEATURES)), scalars),
                                                      st.just([1])),
              "age": scalars, "calls": scalars, "plan": scalars, "vip": scalars},
)


class Spool:
    """A store and a spool dir in a fresh temp dir (hypothesis runs many examples per test)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="mt-h-"))
        (self.root / "p").mkdir()
        self.model = ModelConfig(name="m", task="classification", predictions=self.root / "p", labels=None,
                                 reference=None, target="label", features=FEATURES, checks=())
        self.store = Store(self.root / "m.duckdb")
        with self.store.transaction() as cur:
            ensure_model_tables(cur, "m", "classification", FEATURES)

    def ingest(self, data: bytes):
        (self.root / "p" / "a.jsonl").write_bytes(data)
        return SpoolReader(self.store, self.model).poll()

    def rows(self) -> list[tuple]:
        return self.store.cursor().execute(
            "SELECT * EXCLUDE (ingested_at) FROM predictions_m ORDER BY request_id, ts").fetchall()

    def counts(self) -> tuple[int, int]:
        cur = self.store.cursor()
        return (cur.execute("SELECT count(*) FROM predictions_m").fetchone()[0],
                cur.execute("SELECT count(*) FROM quarantine WHERE line IS NOT NULL OR reason = 'duplicate request_id'")
                .fetchone()[0])

    def close(self) -> None:
        self.store.close()
        shutil.rmtree(self.root, ignore_errors=True)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(records, min_size=1, max_size=12))
def test_fast_path_stores_exactly_what_the_line_path_stores(batch):
    lines = "".join(json.dumps(r) + "\n" for r in batch).encode()
    fast, slow = Spool(), Spool()
    try:
        fast_report = fast.ingest(lines)
        slow_report = slow.ingest(lines + b"{not json\n")  # one bad line forces the line-by-line path
        assert slow_report.fast_batches == 0
        assert fast.rows() == slow.rows()
        if fast_report.fast_batches:
            assert fast_report.quarantined == fast_report.duplicates
    finally:
        fast.close()
        slow.close()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(records.map(lambda r: json.dumps(r).encode()), st.binary(max_size=40)),
                min_size=1, max_size=15))
def test_accepted_plus_quarantined_equals_offered(lines):
    lines = [line.replace(b"\n", b" ") for line in lines]
    offered = sum(1 for line in lines if line.rstrip(b"\r").strip())
    spool = Spool()
    try:
        spool.ingest(b"".join(line + b"\n" for line in lines))
        stored, quarantined = spool.counts()
        assert stored + quarantined == offered
    finally:
        spool.close()


def test_clean_batches_take_the_fast_path_and_bad_ones_quarantine_with_line_numbers():
    spool = Spool()
    try:
        good = [{"ts": 1_700_000_000 + i, "request_id": f"r{i}", "features": {"age": i, "plan": "a"}} for i in range(5)]
        report = spool.ingest("".join(json.dumps(r) + "\n" for r in good).encode())
        assert report.fast_batches == 1 and report.rows == 5
        with open(spool.root / "p" / "a.jsonl", "ab") as fh:  # tail: append a bad line and a good one
            fh.write(b'{"ts": "2026-01-01T00:00:00", "request_id": "naive"}\n')
            fh.write(json.dumps({"ts": 1_700_000_100, "request_id": "r9"}).encode() + b"\n")
        report = SpoolReader(spool.store, spool.model).poll()
        assert report.slow_batches == 1 and report.rows == 1
        line, reason = spool.store.cursor().execute("SELECT line, reason FROM quarantine").fetchone()
        assert (line, reason) == (6, "ts '2026-01-01T00:00:00' has no UTC offset")
    finally:
        spool.close()
