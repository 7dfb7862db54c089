"""Spool formats and awkward files: none may stop ingest; each is stored, quarantined or reported with a reason."""

from __future__ import annotations

import gzip
import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from daemon.config import ModelConfig
from daemon.ingest import SpoolReader, fast
from daemon.store.db import Store, ensure_model_tables

FEATURES = {"age": "DOUBLE", "plan": "VARCHAR"}


@pytest.fixture
def spool(tmp_path):
    (tmp_path / "p").mkdir()
    (tmp_path / "l").mkdir()
    model = ModelConfig(name="m", task="classification", predictions=tmp_path / "p", labels=tmp_path / "l",
                        reference=None, target="label", features=FEATURES, checks=())
    store = Store(tmp_path / "m.duckdb")
    with store.transaction() as cur:
        ensure_model_tables(cur, "m", "classification", FEATURES)
    yield store, model, tmp_path
    store.close()


def poll(store, model):
    """One poll, after backdating every whole-file spool: files written in the last second are taken to be
    still in writing and are left for the next poll."""
    for spool in (model.predictions, model.labels):
        for path in spool.iterdir():
            if not path.name.endswith(".jsonl") and path.stat().st_mtime > 1:
                os.utime(path, (path.stat().st_mtime - 5, path.stat().st_mtime - 5))
    return SpoolReader(store, model).poll()


def stored(store, table="predictions_m", column="request_id"):
    return sorted(r[0] for r in store.cursor().execute(f"SELECT {column} FROM {table}").fetchall())


def reasons(store):
    return [r[0] for r in store.cursor().execute("SELECT reason FROM quarantine ORDER BY ts, line").fetchall()]


def lines(*records):
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def test_csv_with_a_missing_and_an_extra_column(spool):
    store, model, root = spool
    (root / "p" / "a.csv").write_text("ts,request_id,age,colour\n2026-01-01T00:00:00Z,c1,3.5,red\n"
                                      "2026-01-01T00:00:01Z,c2,,blue\n")
    report = poll(store, model)
    assert stored(store) == ["c1", "c2"] and report.rows == 2
    assert set(reasons(store)) == {"extra column(s) ignored: colour", "missing feature column(s), stored as NULL: plan"}
    assert poll(store, model).rows == 0  # consumed once


def test_csv_with_a_bad_value_is_read_row_by_row(spool):
    store, model, root = spool
    (root / "p" / "a.csv").write_text("ts,request_id,age,plan\n2026-01-01T00:00:00Z,c1,old,a\n"
                                      "2026-01-01T00:00:01Z,c2,4,b\n")
    assert poll(store, model).rows == 1
    assert "age 'old' is not a number" in reasons(store)


def test_parquet_with_typed_timestamps_and_a_different_schema(spool):
    store, model, root = spool
    table = pa.table({"ts": pa.array([1_700_000_000_000_000, 1_700_000_001_000_000], pa.timestamp("us", "UTC")),
                      "request_id": ["p1", "p2"], "age": pa.array([1, 2], pa.int32()), "plan": ["a", "b"],
                      "prediction": [1, 0]})
    pq.write_table(table, root / "p" / "a.parquet")
    other = pa.table({"ts": pa.array([1_700_000_002_000_000], pa.timestamp("us")), "request_id": ["p3"],
                      "age": ["not a number"]})
    pq.write_table(other, root / "p" / "b.parquet")
    poll(store, model)
    assert stored(store) == ["p1", "p2"]
    assert store.cursor().execute("SELECT age, prediction FROM predictions_m WHERE request_id = 'p1'").fetchone() \
        == (1.0, "1")
    assert "age 'not a number' is not a number" in reasons(store)


def test_gzip_whole_and_cut_in_half(spool):
    store, model, root = spool
    data = gzip.compress(lines({"ts": 1, "request_id": "g1"}, {"ts": 2, "request_id": "g2"}))
    (root / "p" / "a.jsonl.gz").write_bytes(data)
    cut = root / "p" / "b.jsonl.gz"
    cut.write_bytes(gzip.compress(lines(*({"ts": i, "request_id": f"x{i}"} for i in range(500))))[:200])
    os.utime(cut, (1, 1))  # long finished: not a file still being written
    poll(store, model)
    assert stored(store) == ["g1", "g2"]
    assert any(r.startswith("gzip file is truncated or corrupt") for r in reasons(store))


def test_empty_file_missing_fields_and_non_finite_numbers(spool):
    store, model, root = spool
    (root / "p" / "0.jsonl").write_bytes(b"")
    (root / "p" / "a.jsonl").write_bytes(
        lines({"request_id": "no-ts"}, {"ts": 1}, {"ts": 1, "request_id": "ok"})
        + b'{"ts": 1, "request_id": "inf", "age": Infinity}\n')
    assert poll(store, model).rows == 1
    assert reasons(store) == ["ts is missing", "request_id is missing or not a non-empty string",
                              "age is inf (not finite)"]


def test_replaced_and_truncated_files_are_reported(spool):
    store, model, root = spool
    path = root / "p" / "a.jsonl"
    path.write_bytes(lines({"ts": 1, "request_id": "r1"}, {"ts": 2, "request_id": "r2"}))
    poll(store, model)
    path.write_bytes(lines({"ts": 3, "request_id": "r3"}))  # same inode, shorter: truncated
    poll(store, model)
    assert any("was truncated from" in r for r in reasons(store))
    path.unlink()
    path.write_bytes(lines({"ts": 4, "request_id": "r4"}) * 1)  # a new file at the same name
    tmp = root / "p" / "new"
    tmp.write_bytes(lines({"ts": 4, "request_id": "r4"}))
    os.replace(tmp, path)
    poll(store, model)
    assert stored(store) == ["r1", "r2", "r4"]
    assert any("was replaced (new inode)" in r for r in reasons(store))


def test_labels_join_late_and_default_their_time_to_arrival(spool):
    store, model, root = spool
    (root / "l" / "a.jsonl").write_bytes(lines({"request_id": "r1", "label": 1},
                                               {"request_id": "r2", "label": "0", "ts": "2026-01-02T00:00:00Z"},
                                               {"request_id": "r3"}))
    poll(store, model)
    assert stored(store, "labels", "label") == ["0", "1"]
    assert reasons(store) == ["label is missing"]


def test_a_whole_file_still_being_written_waits(spool):
    store, model, root = spool
    (root / "p" / "a.csv").write_text("ts,request_id\n2026-01-01T00:00:00Z,w1\n")
    assert SpoolReader(store, model).poll().rows == 0  # written this very second: not yet
    assert poll(store, model).rows == 1  # settled


def test_a_live_jsonl_file_is_never_read_past_its_recorded_size(spool):
    """DuckDB reads a complete file in place; if it grew meanwhile, the batch falls back to the bounded path."""
    store, model, root = spool
    path = root / "p" / "live.jsonl"
    path.write_bytes(lines(*({"ts": i, "request_id": f"a{i}"} for i in range(1000))))
    reader = SpoolReader(store, model)
    real_stage = fast.stage

    appended = []

    def stage_while_the_writer_appends(*args, **kwargs):
        if not appended:  # the writer appends once, while DuckDB reads the file
            appended.append(True)
            with open(path, "ab") as fh:
                fh.write(lines({"ts": 5000, "request_id": "late"}))
        return real_stage(*args, **kwargs)

    fast.stage = stage_while_the_writer_appends
    try:
        reader.poll()
    finally:
        fast.stage = real_stage
    reader.poll()
    assert len(stored(store)) == 1001 and reasons(store) == []  # every line once, none twice


def test_a_file_that_disappears_while_read_stops_nothing(spool):
    store, model, root = spool
    doomed = root / "p" / "a.jsonl"
    doomed.write_bytes(lines({"ts": 1, "request_id": "gone"}))
    (root / "p" / "b.jsonl").write_bytes(lines({"ts": 2, "request_id": "kept"}))
    real_stage = fast.stage

    def stage_after_the_file_vanished(tx, relation, *args, **kwargs):
        if "a.jsonl" in relation:
            doomed.unlink(missing_ok=True)
        return real_stage(tx, relation, *args, **kwargs)

    fast.stage = stage_after_the_file_vanished
    try:
        poll(store, model)
    finally:
        fast.stage = real_stage
    assert stored(store) == ["kept"]
    assert poll(store, model).rows == 0  # and nothing breaks on the next poll either
