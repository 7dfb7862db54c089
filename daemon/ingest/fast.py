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


class _Field:
    """One input field, read once: its JSON (`j`), JSON type (`t`) and text (`s`) are columns of an inner
    query, so each is computed once per row however many checks use it."""

    def __init__(self, index: int) -> None:
        self.j, self.t, self.s = f"j{index}", f"t{index}", f"s{index}"

    def inner(self) -> str:
        return f"{self.j}, json_type({self.j}) AS {self.t}, {self.j} ->> '$' AS {self.s}"

    def is_id(self) -> str:
        return f"{self.t} IN ('VARCHAR', 'BIGINT', 'UBIGINT')"

    def is_object(self) -> str:
        return f"coalesce({self.t} = 'OBJECT', false)"

    @property
    def nullish(self) -> str:
        return f"({self.t} IS NULL OR {self.t} = 'NULL')"

    def ts(self) -> str:
        """ISO-8601 with an offset, or epoch seconds, as naive UTC; NULL when neither."""
        epoch = f"({self.t} IN ('BIGINT', 'UBIGINT', 'DOUBLE') OR ({self.t} = 'VARCHAR' AND " \
                f"regexp_matches({self.s}, {_NUMBER})))"
        return (f"CASE WHEN {epoch} THEN to_timestamp(try_cast({self.s} AS DOUBLE)) AT TIME ZONE 'UTC' "
                f"WHEN {self.t} = 'VARCHAR' AND regexp_matches({self.s}, {_OFFSET}) "
                f"THEN try_cast({self.s} AS TIMESTAMPTZ) AT TIME ZONE 'UTC' END")

    def text(self) -> str:
        """A JSON scalar as records.coerce(..., "VARCHAR") gives it: strings as-is, others as JSON text."""
        return f"(CASE WHEN {self.t} = 'VARCHAR' THEN {self.s} ELSE {self.j}::VARCHAR END)"

    def scalar_ok(self) -> str:
        return f"({self.nullish} OR {self.t} IN {SCALAR_JSON})"

    def value(self, kind: str) -> tuple[str, str]:
        """(SQL for the stored value, SQL true when the JSON value is acceptable) for a typed field."""
        if kind == "VARCHAR":
            return self.text(), self.scalar_ok()
        if kind == "DOUBLE":
            value = f"try_cast({self.s} AS DOUBLE)"
            value = f"(CASE WHEN {self.t} = 'BOOLEAN' THEN ({self.s} = 'true')::DOUBLE ELSE {value} END)"
            ok = (f"(CASE WHEN {self.nullish} OR {self.t} = 'BOOLEAN' THEN true "
                  f"WHEN {self.t} IN ('BIGINT', 'UBIGINT', 'DOUBLE') THEN isfinite({value}) "
                  f"WHEN {self.t} = 'VARCHAR' THEN regexp_matches({self.s}, {_NUMBER}) AND isfinite({value}) "
                  "ELSE false END)")
            return value, ok
        if kind == "BIGINT":
            value = f"try_cast(try_cast({self.s} AS DOUBLE) AS BIGINT)"
            ok = (f"(CASE WHEN {self.nullish} THEN true "
                  f"WHEN {self.t} IN ('BIGINT', 'UBIGINT') THEN {value} IS NOT NULL "
                  f"WHEN {self.t} = 'DOUBLE' THEN {self.s}::DOUBLE = floor({self.s}::DOUBLE) AND {value} IS NOT NULL "
                  f"WHEN {self.t} = 'VARCHAR' THEN regexp_matches({self.s}, '^\\s*-?[0-9]+\\s*$') "
                  f"AND {value} IS NOT NULL ELSE false END)")
            return value, ok
        if kind == "BOOLEAN":
            value = f"(CASE WHEN {self.t} = 'BOOLEAN' THEN {self.s}::BOOLEAN ELSE lower({self.s}) = 'true' END)"
            words = f"({self.t} = 'VARCHAR' AND lower({self.s}) IN ('true', 'false'))"
            ok = f"({self.nullish} OR {self.t} = 'BOOLEAN' OR {words})"
            return value, ok
        raise ValueError(kind)


_INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
                  "HUGEINT")
_FLOAT_TYPES = ("FLOAT", "DOUBLE", "REAL")


class _NativeField:
    """A typed column of a Parquet or CSV file, judged by its DuckDB type instead of through JSON: the
    same rules as _Field, but a column already of the wanted type costs nothing to check."""

    def __init__(self, index: int, kind: str | None) -> None:
        self.j = f"j{index}"
        self.kind = kind or "NULL"
        self.integer = self.kind in _INTEGER_TYPES
        self.numeric = self.integer or self.kind in _FLOAT_TYPES or self.kind.startswith("DECIMAL")
        self.string = self.kind == "VARCHAR"
        self.scalar = self.numeric or self.string or self.kind in ("BOOLEAN", "NULL")

    def inner(self) -> str:
        return self.j

    @property
    def nullish(self) -> str:
        return f"({self.j} IS NULL)"

    def is_id(self) -> str:
        return "true" if self.string or self.integer else self.nullish

    def is_object(self) -> str:
        return "false"

    def ts(self) -> str:
        if self.kind.startswith("TIMESTAMP"):  # a typed timestamp has no offset text: taken as UTC
            return f"({self.j}::TIMESTAMPTZ AT TIME ZONE 'UTC')" if "TIME ZONE" in self.kind else f"{self.j}::TIMESTAMP"
        if self.numeric:
            return f"(to_timestamp({self.j}::DOUBLE) AT TIME ZONE 'UTC')"
        if self.string:
            return (f"(CASE WHEN regexp_matches({self.j}, {_NUMBER}) "
                    f"THEN to_timestamp(try_cast({self.j} AS DOUBLE)) AT TIME ZONE 'UTC' "
                    f"WHEN regexp_matches({self.j}, {_OFFSET}) "
                    f"THEN try_cast({self.j} AS TIMESTAMPTZ) AT TIME ZONE 'UTC' END)")
        return "NULL::TIMESTAMP"

    def text(self) -> str:
        return self.j if self.string else f"to_json({self.j})::VARCHAR"

    def scalar_ok(self) -> str:
        return "true" if self.scalar else self.nullish

    def value(self, kind: str) -> tuple[str, str]:
        j = self.j
        if kind == "VARCHAR":
            return self.text(), self.scalar_ok()
        if kind == "DOUBLE":
            if self.numeric:
                return f"{j}::DOUBLE", f"({j} IS NULL OR isfinite({j}::DOUBLE))"
            if self.kind == "BOOLEAN":
                return f"{j}::DOUBLE", "true"
            if self.string:
                value = f"try_cast({j} AS DOUBLE)"
                return value, f"({j} IS NULL OR (regexp_matches({j}, {_NUMBER}) AND isfinite({value})))"
        if kind == "BIGINT":
            if self.integer:
                return f"{j}::BIGINT", "true"
            value = f"try_cast(try_cast({j} AS DOUBLE) AS BIGINT)"
            if self.numeric:
                return value, f"({j} IS NULL OR ({j} = floor({j}) AND {value} IS NOT NULL))"
            if self.string:
                return value, f"({j} IS NULL OR (regexp_matches({j}, '^\\s*-?[0-9]+\\s*$') AND {value} IS NOT NULL))"
        if kind == "BOOLEAN":
            if self.kind == "BOOLEAN":
                return j, "true"
            if self.string:
                return f"(lower({j}) = 'true')", f"({j} IS NULL OR lower({j}) IN ('true', 'false'))"
        return "NULL", self.nullish  # a type that cannot hold this kind: only NULL passes


def field_names(model: ModelConfig, source: str) -> list[str]:
    if source == "labels":
        return ["request_id", "label", "ts"]
    return list(dict.fromkeys(["ts", "request_id", "model_version", "prediction", "score", "latency_ms", "error",
                               "features", *model.features]))


def jsonl_relation(path: Path, model: ModelConfig, source: str) -> str:
    """Every field of a JSONL file as a JSON column: types are judged in SQL exactly as records.py does."""
    columns = "{" + ", ".join(f"{_lit(n)}: 'JSON'" for n in field_names(model, source)) + "}"
    return f"read_json({_lit(str(path))}, format = 'newline_delimited', columns = {columns})"


def jsonl_typed(path: Path, model: ModelConfig) -> tuple[str, dict[str, str]] | None:
    """Prediction JSONL with its DOUBLE fields typed by the reader: (relation, type per field), or None
    when the model has no such field. DuckDB's JSON-to-DOUBLE cast is never more lenient than
    records.coerce (strings it cannot parse, objects and arrays fail the whole read, and the batch falls
    back to the all-JSON relation); non-finite values are caught by the staging checks."""
    doubles = [f for f, kind in model.features.items() if kind == "DOUBLE"]
    if not doubles:
        return None
    types = {n: "JSON" for n in field_names(model, "predictions")}
    types.update({f: "DOUBLE" for f in doubles})
    types["latency_ms"] = "DOUBLE"
    if model.task == "regression":
        types["prediction"] = "DOUBLE"
    members = ", ".join(f"{quote_ident(f)} {types[f]}" for f in model.features)
    types["features"] = f"STRUCT({members})"
    columns = "{" + ", ".join(f"{_lit(n)}: {_lit(t)}" for n, t in types.items()) + "}"
    return f"read_json({_lit(str(path))}, format = 'newline_delimited', columns = {columns})", types


def tabular_relation(tx: duckdb.DuckDBPyConnection, path: Path, model: ModelConfig, source: str,
                     kind: str) -> tuple[str, dict[str, str | None], list[str], list[str]]:
    """A CSV or Parquet file's columns as they are; (relation, type per field, missing, extra columns).

    CSV is read as text (so "3" is judged like JSON's "3"); Parquet keeps its types.
    """
    reader = (f"read_csv({_lit(str(path))}, header = true, all_varchar = true)" if kind == ".csv"
              else f"read_parquet({_lit(str(path))})")
    types = {row[0]: row[1] for row in tx.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()}
    wanted = [n for n in field_names(model, source) if n != "features"]
    projections = [f"{quote_ident(n)}" if n in types else f"NULL AS {quote_ident(n)}" for n in wanted]
    missing = [n for n in wanted if n not in types and n in model.features]
    extra = [n for n in types if n not in wanted]
    return (f"(SELECT {', '.join(projections)} FROM {reader})", {n: types.get(n) for n in wanted}, missing,
            extra)


def stage(tx: duckdb.DuckDBPyConnection, relation: str, model: ModelConfig, source: str,
          now: datetime, native: dict[str, str | None] | None = None) -> int | None:
    """Stage `relation` into temp.incoming; the number of rows, or None when the batch needs the slow path.

    The relation's columns are named as in field_names: JSON values (JSONL), or, with `native` (the DuckDB
    type of each column), typed values of a CSV or Parquet file.
    """
    if source == "labels":
        return _stage_labels(tx, relation, model, now, native)
    inputs = ["ts", "request_id", "model_version", "prediction", "score", "latency_ms", "error"]
    sources = [quote_ident(n) for n in inputs]
    extra = []
    if native is not None and "features" in native:
        # JSONL read with DOUBLE fields typed by DuckDB's reader (the costly part done while parsing), the
        # rest as JSON; `features` is then a STRUCT.
        extra = ["features"]
        for feature in model.features:
            sources.append(f"(CASE WHEN features IS NOT NULL THEN features.{quote_ident(feature)} "
                           f"ELSE {quote_ident(feature)} END)")
        names = [*inputs, *model.features]
        fields = [_Field(i) if native.get(n) == "JSON" else _NativeField(i, native.get(n))
                  for i, n in enumerate(names)]
    elif native is not None:
        sources += [quote_ident(f) for f in model.features]
        fields: list = [_NativeField(i, native.get(n)) for i, n in enumerate([*inputs, *model.features])]
    else:
        extra = ["features"]
        for feature in model.features:
            # a feature comes from the `features` object when there is one, else from the top level
            sources.append(f"(CASE WHEN features IS NOT NULL AND json_type(features) <> 'NULL' "
                           f"THEN json_extract(features, {_lit('$.' + _json_key(feature))}) "
                           f"ELSE {quote_ident(feature)} END)")
        fields = [_Field(i) for i in range(len(sources))]
    ts, request_id, version, prediction, score, latency, error, *features = fields
    select = [f"{ts.ts()} AS ts", f"{request_id.text()} AS request_id"]
    checks = [f"{ts.ts()} IS NOT NULL", request_id.is_id(), f"{request_id.text()} <> ''"]
    kinds = [("model_version", version, "VARCHAR"),
             ("prediction", prediction, "DOUBLE" if model.task == "regression" else "VARCHAR"),
             ("latency_ms", latency, "DOUBLE"), ("error", error, "VARCHAR")]
    kinds += [(name, field, kind) for (name, kind), field in zip(model.features.items(), features, strict=True)]
    for name, field, kind in kinds:
        value, ok = field.value(kind)
        select.append(f"{value} AS {quote_ident(name)}")
        checks.append(ok)
    # score may be an object class -> probability: stored as NULL for now, as records.py does
    score_value, score_ok = score.value("DOUBLE")
    select.append(f"CASE WHEN {score.is_object()} THEN NULL ELSE {score_value} END AS score")
    checks.append(f"({score.is_object()} OR {score_ok})")
    select.append("?::TIMESTAMP AS ingested_at")
    if extra and native is None:
        checks.append("(features IS NULL OR json_type(features) IN ('OBJECT', 'NULL'))")
    return _stage(tx, relation, sources, fields, select, checks, [now], extra=extra)


def _stage_labels(tx: duckdb.DuckDBPyConnection, relation: str, model: ModelConfig, now: datetime,
                  native: dict[str, str | None] | None = None) -> int | None:
    names = ["request_id", "label", "ts"]
    fields: list = ([_NativeField(i, native.get(n)) for i, n in enumerate(names)] if native is not None
                    else [_Field(i) for i in range(3)])
    request_id, label, ts = fields
    select = ["?::VARCHAR AS model", f"{request_id.text()} AS request_id", f"{label.text()} AS label",
              f"CASE WHEN {ts.nullish} THEN ?::TIMESTAMP ELSE {ts.ts()} END AS ts", "?::TIMESTAMP AS ingested_at"]
    checks = [request_id.is_id(), f"{request_id.text()} <> ''",
              f"NOT {label.nullish}", label.scalar_ok(), f"({ts.nullish} OR {ts.ts()} IS NOT NULL)"]
    return _stage(tx, relation, [quote_ident(n) for n in names], fields, select, checks, [model.name, now, now])


def _stage(tx: duckdb.DuckDBPyConnection, reader: str, sources: list[str], fields: list,
           select: list[str], checks: list[str], params: list, extra: tuple | list = ()) -> int | None:
    raw = ", ".join([*(f"{src} AS {f.j}" for src, f in zip(sources, fields, strict=True)), *extra])
    typed = ", ".join([*(f.inner() for f in fields), *extra])
    valid = " AND ".join(f"coalesce({c}, false)" for c in checks)
    tx.execute(f"""CREATE OR REPLACE TEMP TABLE incoming AS
                   SELECT {', '.join(select)}, {valid} AS _ok
                   FROM (SELECT {typed} FROM (SELECT {raw} FROM {reader}))""", params)
    total, bad = tx.execute("SELECT count(*), count(*) FILTER (NOT _ok) FROM temp.incoming").fetchone()
    if bad:
        return None
    tx.execute("ALTER TABLE temp.incoming DROP COLUMN _ok")
    return total


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _json_key(name: str) -> str:
    return '"' + name.replace('"', '\\"') + '"'
