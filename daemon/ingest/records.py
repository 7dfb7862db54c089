"""What a valid record is: timestamps, safe coercions and the row each record becomes.

This is the reference semantics of ingest: the DuckDB fast path (fast.py) must accept exactly what
these functions accept, and the slow path uses them line by line to give each rejected record a reason.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from daemon.config import ModelConfig

RAW_CAP = 4096
_EPOCH = re.compile(r"^\s*-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?\s*$")  # the same as fast.py's _NUMBER
ARROW_TYPES = {"DOUBLE": pa.float64(), "BIGINT": pa.int64(), "VARCHAR": pa.string(), "BOOLEAN": pa.bool_()}


class Rejected(ValueError):
    """A record that cannot be stored; the message is the reason shown in the quarantine."""


def parse_ts(value: Any, key: str = "ts") -> datetime:
    """ISO-8601 with an offset, or epoch seconds; stored as naive UTC."""
    if isinstance(value, bool):
        raise Rejected(f"{key} must be an ISO-8601 time or epoch seconds, got a boolean")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise Rejected(f"{key} is not finite")
        return datetime.fromtimestamp(value, UTC).replace(tzinfo=None)
    if isinstance(value, datetime):  # a typed timestamp column (Parquet): naive ones are taken as UTC
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, str) and _EPOCH.match(value):  # epoch seconds written as text (CSV, some loggers)
        return parse_ts(float(value), key)
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
        if isinstance(value, bool):  # true/false as 1/0, as DuckDB's reader and most feature pipelines do
            return float(value)
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
        if not -(2**63) <= value < 2**63:
            raise Rejected(f"{key} {value} is out of range for a 64-bit integer"[:200])
        return value
    if kind == "BOOLEAN":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise Rejected(f"{key} must be true or false, got {value!r}"[:200])
    if isinstance(value, str):
        return _unicode(value, key)
    if isinstance(value, bool | int) or (isinstance(value, float) and math.isfinite(value)):
        return json.dumps(value)
    raise Rejected(f"{key} must be a string, got {type(value).__name__}")


def _unicode(value: str, key: str) -> str:
    """JSON can carry lone surrogates ("\\ud800") that no store can hold as text."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Rejected(f"{key} is not valid Unicode (a lone surrogate)") from None
    return value


def _request_id(record: dict[str, Any]) -> str:
    """A non-empty string; an integer id is taken as its decimal text (servers often log numeric ids)."""
    value = record.get("request_id")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise Rejected("request_id is missing or not a non-empty string")
    return _unicode(value, "request_id")


def prediction_row(record: Any, model: ModelConfig, now: datetime) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise Rejected(f"a record must be a JSON object, got {type(record).__name__}")
    request_id = _request_id(record)
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
    request_id = _request_id(record)
    if record.get("label") is None:
        raise Rejected("label is missing")
    return {
        "model": model.name,
        "request_id": request_id,
        "label": coerce(record["label"], "VARCHAR", "label"),
        "ts": parse_ts(record["ts"]) if record.get("ts") is not None else now,
        "ingested_at": now,
    }


def prediction_schema(model: ModelConfig) -> pa.Schema:
    fields = [
        ("ts", pa.timestamp("us")), ("request_id", pa.string()), ("model_version", pa.string()),
        ("prediction", pa.float64() if model.task == "regression" else pa.string()), ("score", pa.float64()),
        ("latency_ms", pa.float64()), ("error", pa.string()), ("ingested_at", pa.timestamp("us")),
    ]
    fields += [(name, ARROW_TYPES[kind]) for name, kind in model.features.items()]
    return pa.schema(fields)


LABEL_SCHEMA = pa.schema([
    ("model", pa.string()), ("request_id", pa.string()), ("label", pa.string()),
    ("ts", pa.timestamp("us")), ("ingested_at", pa.timestamp("us")),
])
