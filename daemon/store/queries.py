"""Read queries shared by the API (daemon running) and the CLI (daemon down, file opened read-only).

Keeping them in one place means `modeltop status` says the same thing whichever way it got its data.
Everything returned is plain JSON-ready data: timestamps become ISO-8601 UTC strings.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import uuid
from collections.abc import Iterable
from typing import Any

import duckdb


def jsonable(value: Any) -> Any:
    """DuckDB values to JSON values (timestamps are UTC by the store's convention)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return value.isoformat() + "Z"
        return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat() + "Z"
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return str(value)


def _rows(cur: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict[str, Any]]:
    result = cur.execute(sql, params or [])
    names = [d[0] for d in result.description]
    return [{n: jsonable(v) for n, v in zip(names, row, strict=True)} for row in result.fetchall()]


def latest_runs(cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    return _rows(
        cur,
        """SELECT model, "check", status, reason, ts, duration_s FROM check_runs
           QUALIFY row_number() OVER (PARTITION BY model, "check" ORDER BY ts DESC, id DESC) = 1""",
    )


def status(
    cur: duckdb.DuckDBPyConnection, configured: Iterable[tuple[str, str]] | None = None
) -> dict[str, Any]:
    """Latest status of every (model, check) and the open alerts per model.

    `configured` (the daemon's current jobs) adds checks that have not run yet as `pending` and hides
    checks removed from config; without it (offline), everything recorded is shown.
    """
    latest = {(r["model"], r["check"]): r for r in latest_runs(cur)}
    keys = list(configured) if configured is not None else sorted(latest)
    open_alerts = {
        (r["model"]): r["n"]
        for r in _rows(cur, "SELECT model, count(*) AS n FROM alerts WHERE state <> 'resolved' GROUP BY model")
    }
    quarantined: dict[str, dict[str, int]] = {}
    for row in quarantine_counts(cur):
        quarantined.setdefault(row["model"], {})[row["reason"]] = row["n"]
    models: dict[str, dict[str, Any]] = {}
    for model, check in keys:
        entry = models.setdefault(
            model, {"name": model, "checks": [], "open_alerts": open_alerts.get(model, 0), "last_update": None,
                    "quarantined": quarantined.get(model, {})}
        )
        run = latest.get((model, check))
        if run is None:
            entry["checks"].append(
                {"check": check, "status": "pending", "reason": "not run yet", "ts": None, "duration_s": None}
            )
            continue
        entry["checks"].append({k: run[k] for k in ("check", "status", "reason", "ts", "duration_s")})
        if entry["last_update"] is None or run["ts"] > entry["last_update"]:
            entry["last_update"] = run["ts"]
    return {"models": list(models.values())}


def metric_series(
    cur: duckdb.DuckDBPyConnection,
    model: str,
    check: str,
    metric: str,
    dims: dict[str, str] | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int = 10_000,
) -> list[list[Any]]:
    """[[ts, value], ...] oldest first; the newest `limit` points when there are more."""
    sql = 'SELECT ts, value FROM metrics WHERE model = ? AND "check" = ? AND metric = ?'
    params: list[Any] = [model, check, metric]
    if dims is not None:
        sql += " AND dims = ?"
        params.append(json.dumps(dims, sort_keys=True, separators=(",", ":")))
    if since is not None:
        sql += " AND ts >= ?"
        params.append(since)
    if until is not None:
        sql += " AND ts <= ?"
        params.append(until)
    sql = f"SELECT * FROM ({sql} ORDER BY ts DESC LIMIT ?) ORDER BY ts"
    params.append(limit)
    return [[jsonable(ts), jsonable(v)] for ts, v in cur.execute(sql, params).fetchall()]


def alerts(
    cur: duckdb.DuckDBPyConnection, state: str = "active", model: str | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    """`state`: active (open or acknowledged), open, acknowledged, resolved or all; newest first."""
    sql = "SELECT * FROM alerts WHERE 1=1"
    params: list[Any] = []
    if state == "active":
        sql += " AND state <> 'resolved'"
    elif state != "all":
        sql += " AND state = ?"
        params.append(state)
    if model:
        sql += " AND model = ?"
        params.append(model)
    sql += " ORDER BY opened_at DESC, id DESC LIMIT ?"
    params.append(limit)
    return _rows(cur, sql, params)


def check_runs(
    cur: duckdb.DuckDBPyConnection, model: str | None = None, check: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    sql = "SELECT * FROM check_runs WHERE 1=1"
    params: list[Any] = []
    if model:
        sql += " AND model = ?"
        params.append(model)
    if check:
        sql += ' AND "check" = ?'
        params.append(check)
    sql += " ORDER BY ts DESC, id DESC LIMIT ?"
    params.append(limit)
    return _rows(cur, sql, params)


def quarantine_counts(cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Rejected records per model and reason. Quoted values in reasons ("age 'x' is not a number") are
    masked, so a counter names a kind of problem rather than each bad value."""
    return _rows(cur, "SELECT model, regexp_replace(reason, $$'[^']*'$$, '…', 'g') AS reason, count(*) AS n "
                      "FROM quarantine GROUP BY ALL ORDER BY model, n DESC")
