"""A model's feature schema from its reference data, when config declares none (the usual case: the
training set already says which columns are features and of what type)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import duckdb

from daemon.config import ModelConfig

log = logging.getLogger("modeltop.ingest")

RECORD_FIELDS = {"ts", "request_id", "model_version", "prediction", "score", "latency_ms", "error", "features"}


def reference_reader(path: Path) -> str:
    """The DuckDB table function that reads a reference file (Parquet or CSV)."""
    literal = "'" + str(path).replace("'", "''") + "'"
    if path.suffix == ".parquet":
        return f"read_parquet({literal})"
    if path.suffix == ".csv":
        return f"read_csv({literal}, header = true)"
    raise ValueError(f"reference {path} must be a .parquet or .csv file")


def feature_type(duckdb_type: str) -> str | None:
    """The stored type of a reference column: numbers, integers, booleans and text; None for the rest."""
    t = duckdb_type.upper()
    if t in ("BOOLEAN",):
        return "BOOLEAN"
    if t in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"):
        return "BIGINT"
    if t in ("FLOAT", "DOUBLE", "REAL", "HUGEINT") or t.startswith("DECIMAL"):
        return "DOUBLE"
    if t == "VARCHAR" or t.startswith("ENUM"):
        return "VARCHAR"
    return None


def with_reference_features(cur: duckdb.DuckDBPyConnection, model: ModelConfig) -> ModelConfig:
    """`model` with features taken from its reference file when config declares none (target excluded)."""
    if model.features or model.reference is None:
        return model
    try:
        described = cur.execute(f"DESCRIBE SELECT * FROM {reference_reader(model.reference)}").fetchall()
    except (duckdb.Error, ValueError) as exc:
        log.warning("%s: no features declared and the reference %s cannot be read (%s); predictions are "
                    "stored without feature columns until it can", model.name, model.reference, exc)
        return model
    features = {}
    for name, kind, *_ in described:
        stored = feature_type(kind)
        if name != model.target and name not in RECORD_FIELDS and stored is not None:
            features[name] = stored
    log.info("%s: %d features from the reference %s", model.name, len(features), model.reference.name)
    return dataclasses.replace(model, features=features)
