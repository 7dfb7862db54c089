"""The fast path: DuckDB's JSON reader stages a batch of clean lines into `temp.incoming`.

It must accept exactly what records.py accepts. Anything it cannot judge the same way (a parse error,
a wrong type, a missing or naive timestamp, a non-finite number) makes it decline the whole batch,
which then goes through the line-by-line path that gives every bad record its reason. Clean batches,
the normal case, never touch Python per row.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb

from daemon.config import ModelConfig
from daemon.store.db import quote_ident

SCALAR_JSON = "('VARCHAR', 'BIGINT', 'UBIGINT', 'DOUBLE', 'BOOLEAN')"
_NUMBER = r"'^\s*-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?\s*$'"
_OFFSET = r"'(Z|z|[+-][0-9]{2}(:?[0-9]{2})?)$'"


def _ts(expr: str) -> str:
    """ISO-8601 with an offset, or epoch seconds, as naive UTC; NULL when neither."""
    text = f"({expr} ->> '$')"
    return (f"CASE WHEN json_type({expr}) IN ('BIGINT', 'UBIGINT', 'DOUBLE') "
            f"THEN to_timestamp({text}::DOUBLE) AT TIME ZONE 'UTC' "
            f"WHEN json_type({expr}) = 'VARCHAR' AND regexp_matches({text}, {_OFFSET}) "
            f"THEN try_cast({text} AS TIMESTAMPTZ) AT TIME ZONE 'UTC' END")


def _text(expr: str) -> str:
    """A JSON scalar as the text records.coerce(..., "VARCHAR") gives: strings as-is, others as JSON."""
    return f"(CASE WHEN json_type({expr}) = 'VARCHAR' THEN {expr} ->> '$' ELSE json({expr})::VARCHAR END)"


def _scalar_ok(expr: str) -> str:
    return f"({expr} IS NULL OR json_type({expr}) = 'NULL' OR json_type({expr}) IN {SCALAR_JSON})"


def _value(expr: str, kind: str) -> tuple[str, str]:
    """(SQL for the stored value, SQL that is true when the JSON value is acceptable) for a typed field."""
    nullish = f"({expr} IS NULL OR json_type({expr}) = 'NULL')"
    text = f"({expr} ->> '$')"
    if kind == "VARCHAR":
        return _text(expr), _scalar_ok(expr)
    if kind == "DOUBLE":
        value = f"try_cast({text} AS DOUBLE)"
        numeric = (f"(json_type({expr}) IN ('BIGINT', 'UBIGINT', 'DOUBLE') OR "
                   f"(json_type({expr}) = 'VARCHAR' AND regexp_matches({text}, {_NUMBER})))")
        return value, f"({nullish} OR ({numeric} AND isfinite({value})))"
    if kind == "BIGINT":
        value = f"try_cast(try_cast({text} AS DOUBLE) AS BIGINT)"
        integral = (f"(json_type({expr}) IN ('BIGINT', 'UBIGINT') OR (json_type({expr}) = 'DOUBLE' AND "
                    f"{text}::DOUBLE = floor({text}::DOUBLE)) OR (json_type({expr}) = 'VARCHAR' AND "
                    f"regexp_matches({text}, '^\\s*-?[0-9]+\\s*$')))")
        return value, f"({nullish} OR ({integral} AND {value} IS NOT NULL))"
    if kind == "BOOLEAN":
        value = f"(CASE WHEN json_type({expr}) = 'BOOLEAN' THEN {text}::BOOLEAN ELSE lower({text}) = 'true' END)"
        ok = f"({nullish} OR json_type({expr}) = 'BOOLEAN' OR lower({text}) IN ('true', 'false'))"
        return value, ok
    raise ValueError(kind)


def field_names(model: ModelConfig, source: str) -> list[str]:
    if source == "labels":
        return ["request_id", "label", "ts"]
    return list(dict.fromkeys(["ts", "request_id", "model_version", "prediction", "score", "latency_ms", "error",
                               "features", *model.features]))


def jsonl_relation(path: Path, model: ModelConfig, source: str) -> str:
    """Every field of a JSONL file as a JSON column: types are judged in SQL exactly as records.py does."""
    columns = "{" + ", ".join(f"{_lit(n)}: 'JSON'" for n in field_names(model, source)) + "}"
    return f"read_json({_lit(str(path))}, format = 'newline_delimited', columns = {columns})"


def tabular_relation(tx: duckdb.DuckDBPyConnection, path: Path, model: ModelConfig, source: str,
                     kind: str) -> tuple[str, list[str], list[str]]:
    """A CSV or Parquet file projected onto the same JSON columns; (relation, missing, extra columns).

    A typed timestamp column (Parquet) is taken as UTC, since Parquet timestamps carry no offset text.
    """
    reader = (f"read_csv({_lit(str(path))}, header = true, all_varchar = true)" if kind == ".csv"
              else f"read_parquet({_lit(str(path))})")
    described = tx.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()
    types = {row[0]: row[1] for row in described}
    wanted = field_names(model, source)
    projections = []
    for name in wanted:
        column = quote_ident(name)
        kind_of = types.get(name)
        if kind_of is None:
            projections.append(f"NULL::JSON AS {column}")
        elif name == "ts" and kind_of.startswith("TIMESTAMP"):
            utc = f"{column}::TIMESTAMPTZ AT TIME ZONE 'UTC'" if "TIME ZONE" in kind_of else column
            projections.append(f"to_json(strftime({utc}, '%Y-%m-%dT%H:%M:%S.%f') || 'Z') AS {column}")
        else:
            projections.append(f"to_json({column}) AS {column}")
    missing = [n for n in wanted if n not in types and n in model.features]
    extra = [n for n in types if n not in wanted]
    return f"(SELECT {', '.join(projections)} FROM {reader})", missing, extra


def stage(tx: duckdb.DuckDBPyConnection, relation: str, model: ModelConfig, source: str,
          now: datetime) -> int | None:
    """Stage `relation` (JSON columns named as in field_names) into temp.incoming; the number of rows, or
    None when the batch needs the slow path."""
    if source == "labels":
        return _stage_labels(tx, relation, model, now)
    select = [f"{_ts('ts')} AS ts", f"{_text('request_id')} AS request_id",
              f"{_value('model_version', 'VARCHAR')[0]} AS model_version"]
    checks = [f"{_ts('ts')} IS NOT NULL", "json_type(request_id) IN ('VARCHAR', 'BIGINT', 'UBIGINT')",
              f"{_text('request_id')} <> ''", _value("model_version", "VARCHAR")[1]]
    prediction_kind = "DOUBLE" if model.task == "regression" else "VARCHAR"
    for name, kind in (("prediction", prediction_kind), ("latency_ms", "DOUBLE"), ("error", "VARCHAR")):
        value, ok = _value(name, kind)
        select.append(f"{value} AS {name}")
        checks.append(ok)
    # score may be an object class -> probability: stored as NULL for now, as records.py does
    score_value, score_ok = _value("score", "DOUBLE")
    select.append(f"CASE WHEN json_type(score) = 'OBJECT' THEN NULL ELSE {score_value} END AS score")
    checks.append(f"(json_type(score) = 'OBJECT' OR {score_ok})")
    select.append("?::TIMESTAMP AS ingested_at")
    for feature, kind in model.features.items():
        # features come from the `features` object when there is one, else from the top level
        expr = (f"(CASE WHEN features IS NOT NULL AND json_type(features) <> 'NULL' "
                f"THEN json_extract(features, {_lit('$.' + _json_key(feature))}) ELSE {quote_ident(feature)} END)")
        value, ok = _value(expr, kind)
        select.append(f"{value} AS {quote_ident(feature)}")
        checks.append(ok)
    checks.append("(features IS NULL OR json_type(features) IN ('OBJECT', 'NULL'))")
    return _stage(tx, relation, select, checks, [now])


def _stage_labels(tx: duckdb.DuckDBPyConnection, relation: str, model: ModelConfig, now: datetime) -> int | None:
    select = ["?::VARCHAR AS model", f"{_text('request_id')} AS request_id", f"{_text('label')} AS label",
              f"CASE WHEN ts IS NULL OR json_type(ts) = 'NULL' THEN ?::TIMESTAMP ELSE {_ts('ts')} END AS ts",
              "?::TIMESTAMP AS ingested_at"]
    checks = ["json_type(request_id) IN ('VARCHAR', 'BIGINT', 'UBIGINT')", f"{_text('request_id')} <> ''",
              "label IS NOT NULL AND json_type(label) <> 'NULL'", _scalar_ok("label"),
              f"(ts IS NULL OR json_type(ts) = 'NULL' OR {_ts('ts')} IS NOT NULL)"]
    return _stage(tx, relation, select, checks, [model.name, now, now])


def _stage(tx: duckdb.DuckDBPyConnection, reader: str, select: list[str], checks: list[str],
           params: list) -> int | None:
    valid = " AND ".join(f"coalesce({c}, false)" for c in checks)
    tx.execute(f"CREATE OR REPLACE TEMP TABLE incoming AS SELECT {', '.join(select)}, {valid} AS _ok FROM {reader}",
               params)
    total, bad = tx.execute("SELECT count(*), count(*) FILTER (NOT _ok) FROM temp.incoming").fetchone()
    if bad:
        return None
    tx.execute("ALTER TABLE temp.incoming DROP COLUMN _ok")
    return total


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _json_key(name: str) -> str:
    return '"' + name.replace('"', '\\"') + '"'
