"""Ad-hoc SQL that can look but not touch (DESIGN.md §2).

Statements are classified by DuckDB's own parser, never a regex: only one plain query is accepted.
File access is bounded by the database's lockdown (db.lock_down), not by reading the SQL. A timer
interrupts a query that runs too long, and results are capped, so a heavy query cannot starve the
monitoring jobs that share the connection.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import duckdb

from daemon.store.queries import jsonable

ALLOWED = {duckdb.StatementType.SELECT}


class SqlRejected(Exception):
    """The statement is not a read-only query; the message says which kind it was."""


class SqlFailed(Exception):
    """The query was accepted but failed (syntax, missing table, timeout)."""


@dataclass
class SqlResult:
    columns: list[str]
    types: list[str]
    rows: list[list[Any]]
    truncated: bool
    elapsed_s: float
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "columns": self.columns, "types": self.types, "rows": self.rows,
            "truncated": self.truncated, "elapsed_s": round(self.elapsed_s, 6), "notes": self.notes,
        }


def classify(sql: str) -> str:
    """The single statement to run; SqlRejected for anything but one query."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise SqlFailed(f"cannot parse: {exc}") from None
    if not statements:
        raise SqlRejected("no statement given")
    if len(statements) > 1:
        raise SqlRejected(f"one statement at a time, got {len(statements)}")
    kind = statements[0].type
    if kind not in ALLOWED:
        name = getattr(kind, "name", str(kind))
        raise SqlRejected(f"only read-only queries (SELECT, WITH, FROM, SHOW, DESCRIBE) are allowed, got {name}")
    return statements[0].query


def run_query(cur: duckdb.DuckDBPyConnection, sql: str, max_rows: int, timeout_s: float) -> SqlResult:
    """Run a classified query on `cur` (a cursor of its own: the timer interrupts only this one)."""
    query = classify(sql)
    timed_out = threading.Event()

    def interrupt() -> None:
        timed_out.set()
        cur.interrupt()

    timer = threading.Timer(timeout_s, interrupt)
    started = time.perf_counter()
    timer.start()
    try:
        result = cur.execute(query)
        if result.description is None:
            return SqlResult([], [], [], False, time.perf_counter() - started)
        columns = [d[0] for d in result.description]
        types = [str(d[1]) for d in result.description]
        rows = result.fetchmany(max_rows + 1)
    except duckdb.Error as exc:
        if timed_out.is_set():
            raise SqlFailed(f"query interrupted after the {timeout_s:g}s limit") from None
        raise SqlFailed(str(exc).strip()) from None
    finally:
        timer.cancel()
    truncated = len(rows) > max_rows
    rows = rows[:max_rows]
    notes = [f"result capped at {max_rows} rows"] if truncated else []
    return SqlResult(columns, types, [[jsonable(v) for v in r] for r in rows], truncated,
                     time.perf_counter() - started, notes)
