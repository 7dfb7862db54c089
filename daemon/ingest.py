"""A first spool reader: JSONL prediction and label logs into the store.

Complete lines after the recorded byte offset are parsed, validated and appended as one Arrow batch,
and the new offset is written in the same transaction, so a crash never loses or doubles rows
(DESIGN.md §7). Rejected records go to the quarantine table with their reason and ingest goes on.
Only `*.jsonl` files are read for now; compressed, CSV and Parquet spools are the ingest issue's work.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from daemon.config import ModelConfig
from daemon.store.db import Store, quote_ident, utcnow

log = logging.getLogger("modeltop.ingest")

MAX_BYTES_PER_PASS = 32 * 1024 * 1024  # bounds memory; the next pass continues from the offset
RAW_CAP = 4096
ARROW_TYPES = {"DOUBLE": pa.float64(), "BIGINT": pa.int64(), "VARCHAR": pa.string(), "BOOLEAN": pa.bool_()}


class Rejected(ValueError):
    """A record that cannot be stored; the message is the reason shown in the quarantine."""


@dataclass
class IngestReport:
    rows: int = 0
    quarantined: int = 0
    bytes: int = 0
    files: list[str] = field(default_factory=list)


def parse_ts(value: Any, key: str = "ts") -> datetime:
    """ISO-8601 with an offset, or epoch seconds; stored as naive UTC."""
    if isinstance(value, bool):
        raise Rejected(f"{key} must be an ISO-8601 time or epoch seconds, got a boolean")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise Rejected(f"{key} is not finite")
        return datetime.fromtimestamp(value, UTC).replace(tzinfo=None)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise Rejected(f"{key} {value[:40]!r} is not ISO-8601") from None
        if parsed.tzinfo is None:
            raise Rejected(f"{key} {value[:40]!r} has no UTC offset")
        return parsed.astimezone(UTC).replace(tzinfo=None)
    raise Rejected(f"{key} is missing" if value is None else f"{key} has type {type(value).__name__}")


def coerce(value: Any, kind: str, key: str) -> Any:
    """Coerce where it is safe ("3" -> 3 for an integer); anything else is a validation failure."""
    if value is None:
        return None
    if kind == "DOUBLE":
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise Rejected(f"{key} {value[:40]!r} is not a number") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise Rejected(f"{key} must be a number, got {type(value).__name__}")
        if not math.isfinite(value):
            raise Rejected(f"{key} is {value} (not finite)")
        return float(value)
    if kind == "BIGINT":
        if isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                raise Rejected(f"{key} {value[:40]!r} is not an integer") from None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise Rejected(f"{key} must be an integer, got {value!r}"[:200])
        return value
    if kind == "BOOLEAN":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise Rejected(f"{key} must be true or false, got {value!r}"[:200])
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int) or (isinstance(value, float) and math.isfinite(value)):
        return json.dumps(value)
    raise Rejected(f"{key} must be a string, got {type(value).__name__}")


def prediction_row(record: Any, model: ModelConfig, now: datetime) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise Rejected(f"a record must be a JSON object, got {type(record).__name__}")
    request_id = record.get("request_id")
    if not isinstance(request_id, str) or not request_id:
        raise Rejected("request_id is missing or not a non-empty string")
    row = {
        "ts": parse_ts(record.get("ts")),
        "request_id": request_id,
        "model_version": coerce(record.get("model_version"), "VARCHAR", "model_version"),
        "prediction": coerce(record.get("prediction"),
                             "DOUBLE" if model.task == "regression" else "VARCHAR", "prediction"),
        "score": coerce(record.get("score"), "DOUBLE", "score") if not isinstance(record.get("score"), dict)
        else None,
        "latency_ms": coerce(record.get("latency_ms"), "DOUBLE", "latency_ms"),
        "error": coerce(record.get("error"), "VARCHAR", "error"),
        "ingested_at": now,
    }
    features = record.get("features", record)
    if not isinstance(features, dict):
        raise Rejected("features must be a JSON object")
    for name, kind in model.features.items():
        row[name] = coerce(features.get(name), kind, name)
    return row


def label_row(record: Any, model: ModelConfig, now: datetime) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise Rejected(f"a record must be a JSON object, got {type(record).__name__}")
    request_id = record.get("request_id")
    if not isinstance(request_id, str) or not request_id:
        raise Rejected("request_id is missing or not a non-empty string")
    if record.get("label") is None:
        raise Rejected("label is missing")
    return {
        "model": model.name,
        "request_id": request_id,
        "label": coerce(record["label"], "VARCHAR", "label"),
        "ts": parse_ts(record["ts"]) if record.get("ts") is not None else now,
        "ingested_at": now,
    }


def _prediction_schema(model: ModelConfig) -> pa.Schema:
    fields = [
        ("ts", pa.timestamp("us")), ("request_id", pa.string()), ("model_version", pa.string()),
        ("prediction", pa.float64() if model.task == "regression" else pa.string()), ("score", pa.float64()),
        ("latency_ms", pa.float64()), ("error", pa.string()), ("ingested_at", pa.timestamp("us")),
    ]
    fields += [(name, ARROW_TYPES[kind]) for name, kind in model.features.items()]
    return pa.schema(fields)


_LABEL_SCHEMA = pa.schema([
    ("model", pa.string()), ("request_id", pa.string()), ("label", pa.string()),
    ("ts", pa.timestamp("us")), ("ingested_at", pa.timestamp("us")),
])


class SpoolReader:
    """Reads one model's prediction and label spools; call `poll()` from one thread at a time."""

    def __init__(self, store: Store, model: ModelConfig) -> None:
        self.store = store
        self.model = model

    def poll(self) -> IngestReport:
        report = IngestReport()
        self._poll_source("predictions", self.model.predictions, prediction_row,
                          _prediction_schema(self.model), self._append_predictions, report)
        if self.model.labels is not None:
            self._poll_source("labels", self.model.labels, label_row, _LABEL_SCHEMA, self._append_labels, report)
        return report

    def _poll_source(self, source: str, spool: Path, to_row: Callable, schema: pa.Schema,
                     append: Callable, report: IngestReport) -> None:
        if not spool.is_dir():
            return
        for path in sorted(p for p in spool.iterdir() if p.name.endswith(".jsonl") and p.is_file()):
            try:
                self._read_file(source, path, to_row, schema, append, report)
            except FileNotFoundError:
                log.info("%s/%s: %s disappeared while being read", self.model.name, source, path.name)

    def _read_file(self, source: str, path: Path, to_row: Callable, schema: pa.Schema,
                   append: Callable, report: IngestReport) -> None:
        st = path.stat()
        cur = self.store.cursor()
        known = cur.execute(
            'SELECT inode, "offset", rows FROM ingest_offsets WHERE model = ? AND source = ? AND file = ?',
            [self.model.name, source, path.name],
        ).fetchone()
        offset, line_no, notes = 0, 0, []
        if known is not None:
            inode, offset, line_no = known
            if inode != st.st_ino:
                notes.append(f"{path.name} was replaced (new inode); reading the new file from its start")
                offset, line_no = 0, 0
            elif st.st_size < offset:
                notes.append(f"{path.name} was truncated from {offset} to {st.st_size} bytes; "
                             "not re-read, new lines are read from the new end")
                offset = st.st_size
        if st.st_size == offset and not notes:
            return
        with open(path, "rb") as fh:
            fh.seek(offset)
            chunk = fh.read(min(st.st_size - offset, MAX_BYTES_PER_PASS))
        end = chunk.rfind(b"\n")
        complete = chunk[: end + 1] if end >= 0 else b""  # a partial last line waits for its newline
        now = utcnow()
        rows, rejects = [], []
        for raw in complete.split(b"\n")[:-1] if complete else []:
            line_no += 1
            text = raw.rstrip(b"\r")
            if not text.strip():
                continue
            try:
                record = json.loads(text.decode("utf-8").lstrip("\ufeff"))
                rows.append(to_row(record, self.model, now))
            except UnicodeDecodeError:
                rejects.append((line_no, text, "not valid UTF-8"))
            except json.JSONDecodeError as exc:
                rejects.append((line_no, text, f"broken JSON: {exc.msg} at column {exc.colno}"))
            except Rejected as exc:
                rejects.append((line_no, text, str(exc)))
        for note in notes:
            log.warning("%s/%s: %s", self.model.name, source, note)
            rejects.append((None, b"", note))
        with self.store.transaction() as tx:
            duplicates = append(tx, pa.Table.from_pylist(rows, schema=schema)) if rows else []
            rejects += [(None, json.dumps({"request_id": r}).encode(), "duplicate request_id") for r in duplicates]
            if rejects:
                tx.executemany(
                    "INSERT INTO quarantine VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [[now, self.model.name, source, path.name, line, raw[:RAW_CAP].decode("utf-8", "replace"),
                      reason] for line, raw, reason in rejects],
                )
            tx.execute(
                "INSERT OR REPLACE INTO ingest_offsets VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [self.model.name, source, path.name, st.st_ino, st.st_size, offset + len(complete), line_no, now],
            )
        report.rows += len(rows) - len(duplicates)
        report.quarantined += len(rejects)
        report.bytes += len(complete)
        report.files.append(path.name)

    def _append_predictions(self, tx: duckdb.DuckDBPyConnection, batch: pa.Table) -> list[str]:
        table = quote_ident(self.model.predictions_table)
        tx.register("incoming", batch)
        try:
            duplicates = [r[0] for r in tx.execute(
                f"""SELECT request_id FROM (
                        SELECT request_id, row_number() OVER (PARTITION BY request_id) AS n FROM incoming) b
                    WHERE n > 1 OR request_id IN (SELECT request_id FROM {table})"""
            ).fetchall()]
            tx.execute(
                f"""INSERT INTO {table} BY NAME
                    SELECT * FROM incoming WHERE request_id NOT IN (SELECT request_id FROM {table})
                    QUALIFY row_number() OVER (PARTITION BY request_id ORDER BY ts) = 1"""
            )
        finally:
            tx.unregister("incoming")
        return duplicates

    def _append_labels(self, tx: duckdb.DuckDBPyConnection, batch: pa.Table) -> list[str]:
        tx.register("incoming", batch)
        try:
            tx.execute("INSERT INTO labels BY NAME SELECT * FROM incoming")
        finally:
            tx.unregister("incoming")
        return []


def spool_dirs(model: ModelConfig) -> list[Path]:
    return [p for p in (model.predictions, model.labels) if p is not None]


def ensure_spools(model: ModelConfig) -> None:
    """Create missing spool directories so a model server can start writing before its first file."""
    for d in spool_dirs(model):
        os.makedirs(d, exist_ok=True)
