"""The first spool reader's record handling: what is accepted, coerced, or quarantined and why."""

from __future__ import annotations

import math
from datetime import datetime

import pytest

from daemon.config import CheckConfig, ModelConfig
from daemon.ingest import Rejected, SpoolReader, coerce, parse_ts, prediction_row
from daemon.store.db import Store, ensure_model_tables

MODEL = ModelConfig(name="m", task="classification", predictions=None, labels=None, reference=None, target="label",
                    features={"age": "DOUBLE", "calls": "BIGINT", "plan": "VARCHAR", "vip": "BOOLEAN"},
                    checks=tuple[CheckConfig, ...]())
NOW = datetime(2026, 1, 1)


def test_timestamps_with_offsets_and_epochs_become_utc():
    assert parse_ts("2026-03-01T12:00:00+02:00") == datetime(2026, 3, 1, 10, 0)
    assert parse_ts("2026-03-01T10:00:00Z") == datetime(2026, 3, 1, 10, 0)
    assert parse_ts(0) == datetime(1970, 1, 1)
    for bad, reason in (("2026-03-01T10:00:00", "no UTC offset"), ("yesterday", "not ISO-8601"),
                        (None, "ts is missing"), (math.nan, "not finite"), (True, "boolean")):
        with pytest.raises(Rejected, match=reason):
            parse_ts(bad)


def test_safe_coercions_only():
    assert coerce("3", "BIGINT", "calls") == 3
    assert coerce(3.0, "BIGINT", "calls") == 3
    assert coerce("2.5", "DOUBLE", "age") == 2.5
    assert coerce("true", "BOOLEAN", "vip") is True
    assert coerce(True, "DOUBLE", "age") == 1.0  # booleans as 1/0 in numeric features
    assert coerce(7, "VARCHAR", "plan") == "7"
    for value, kind, reason in ((3.5, "BIGINT", "must be an integer"), ("x", "DOUBLE", "not a number"),
                                (math.inf, "DOUBLE", "not finite"), ([1], "DOUBLE", "must be a number"),
                                ({"a": 1}, "VARCHAR", "must be a string"), ("yes", "BOOLEAN", "true or false")):
        with pytest.raises(Rejected, match=reason):
            coerce(value, kind, "f")


def test_features_at_top_level_or_in_a_features_object():
    nested = prediction_row({"ts": 1, "request_id": "a", "features": {"age": 3, "plan": "x"}}, MODEL, NOW)
    flat = prediction_row({"ts": 1, "request_id": "a", "age": 3, "plan": "x"}, MODEL, NOW)
    assert nested == flat and nested["age"] == 3.0 and nested["calls"] is None


def test_awkward_bytes_in_a_spool_file(tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    store = Store(tmp_path / "m.duckdb")
    model = ModelConfig(**{**MODEL.__dict__, "predictions": spool})
    with store.transaction() as cur:
        ensure_model_tables(cur, "m", "classification", model.features)
    (spool / "a.jsonl").write_bytes(
        b'\xef\xbb\xbf{"ts": 1, "request_id": "bom"}\n'      # a BOM on the first line
        b'{"ts": 1, "request_id": "crlf"}\r\n'                 # CRLF line end
        b"\n   \n"                                              # empty lines are skipped, not quarantined
        b'{"ts": 1, "request_id": "bad\xff"}\n'                # invalid UTF-8
        b'{"ts": 1, "request_id": "nan", "age": NaN}\n'        # NaN
        b'["not", "an", "object"]\n'
        b'{"ts": 1, "request_id": "big", "plan": "' + b"x" * 1_000_000 + b'"}\n'
    )
    report = SpoolReader(store, model).poll()
    cur = store.cursor()
    stored = sorted(r[0] for r in cur.execute("SELECT request_id FROM predictions_m").fetchall())
    assert stored == ["big", "bom", "crlf"]
    quarantined = cur.execute("SELECT line, reason, length(raw) FROM quarantine ORDER BY line").fetchall()
    assert [(line, reason) for line, reason, _ in quarantined] == [
        (5, "not valid UTF-8"), (6, "age is nan (not finite)"), (7, "a record must be a JSON object, got list")]
    assert report.rows == 3 and report.quarantined == 3
    # nothing is read twice
    assert SpoolReader(store, model).poll().rows == 0
    store.close()


def test_values_no_column_can_hold_are_rejected_with_a_reason():
    with pytest.raises(Rejected, match="out of range for a 64-bit integer"):
        coerce(2**70, "BIGINT", "calls")
    with pytest.raises(Rejected, match="out of range"):
        coerce(3.4e38, "BIGINT", "calls")
    with pytest.raises(Rejected, match="not valid Unicode"):
        coerce("\ud800", "VARCHAR", "plan")
    with pytest.raises(Rejected, match="request_id is not valid Unicode"):
        prediction_row({"ts": 1, "request_id": "\udfff"}, MODEL, NOW)
