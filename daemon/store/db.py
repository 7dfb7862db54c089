"""Opening the store: migrations, lockdown, per-thread cursors and the write lock.

The daemon keeps one DuckDB connection for its whole life (DESIGN.md §1). Threads use their own cursor
(DuckDB allows many threads on one connection through cursors); writes that read-modify-write (alerts,
offsets) go through one lock so they never conflict, while appends and reads run freely.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from daemon.store.errors import StoreError
from daemon.store.migrations import LATEST, MIGRATIONS

PREDICTION_COLUMNS = {
    "ts": "TIMESTAMP NOT NULL",
    "request_id": "VARCHAR NOT NULL",
    "model_version": "VARCHAR",
    "prediction": None,  # VARCHAR for classification, DOUBLE for regression
    "score": "DOUBLE",
    "latency_ms": "DOUBLE",
    "error": "VARCHAR",
    "ingested_at": "TIMESTAMP NOT NULL",
}


def utcnow() -> datetime:
    """Naive UTC, the store's convention for every timestamp."""
    return datetime.now(UTC).replace(tzinfo=None)


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
    ).fetchone()[0]
    if not exists:
        return 0
    return con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]


def migrate(con: duckdb.DuckDBPyConnection, target: int = LATEST) -> list[int]:
    """Apply every migration above the store's version up to `target`; returns the versions applied."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_version "
        "(version INTEGER PRIMARY KEY, description VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
    )
    current = schema_version(con)
    if current > LATEST:
        raise StoreError(
            f"the store's schema version is {current}, newer than this modeltop understands ({LATEST}); "
            "upgrade modeltop or point it at another state directory"
        )
    applied = []
    for version in range(current + 1, target + 1):
        description, statements = MIGRATIONS[version - 1]
        con.execute("BEGIN TRANSACTION")
        try:
            for statement in statements:
                con.execute(statement)
            con.execute("INSERT INTO schema_version VALUES (?, ?, ?)", [version, description, utcnow()])
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        applied.append(version)
    return applied


def lock_down(con: duckdb.DuckDBPyConnection, allowed_dirs: Iterable[Path]) -> None:
    """Bound file access by DuckDB itself (DESIGN.md §2): no statement can read outside these
    directories, install extensions, or undo the settings."""
    dirs = sorted({str(Path(d).resolve()) + "/" for d in allowed_dirs})
    con.execute("SET allowed_directories = ?", [dirs])
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


class Store:
    """The daemon's handle on the DuckDB file."""

    def __init__(self, path: Path, allowed_dirs: Iterable[Path] = ()) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(str(path))
        except duckdb.IOException as exc:
            raise StoreError(f"cannot open {path}: {exc}. Is another modeltop daemon using it?") from None
        self.path = path
        self.applied = migrate(self._con)
        lock_down(self._con, [path.parent, *allowed_dirs])
        self.write_lock = threading.RLock()
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._adhoc: set[duckdb.DuckDBPyConnection] = set()
        self._cursors_lock = threading.Lock()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor, created on first use."""
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._con.cursor()
            self._local.cursor = cur
            with self._cursors_lock:
                self._cursors.append(cur)
        return cur

    @contextlib.contextmanager
    def adhoc_cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A private cursor for one request (ad-hoc SQL, snapshots), interruptible on its own and by
        shutdown, so a long query can neither outlive its timeout nor hold up a stop."""
        cur = self._con.cursor()
        with self._cursors_lock:
            self._adhoc.add(cur)
        try:
            yield cur
        finally:
            with self._cursors_lock:
                self._adhoc.discard(cur)
            cur.close()

    def interrupt_adhoc(self) -> None:
        with self._cursors_lock:
            for cur in self._adhoc:
                with contextlib.suppress(Exception):
                    cur.interrupt()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One serialised write transaction: committed on success, rolled back on any error."""
        with self.write_lock:
            cur = self.cursor()
            cur.execute("BEGIN TRANSACTION")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    def interrupt(self) -> None:
        """Cancel whatever runs on any cursor (used when shutdown cannot wait any longer)."""
        self.interrupt_adhoc()
        with self._cursors_lock:
            for cur in self._cursors:
                with contextlib.suppress(Exception):
                    cur.interrupt()

    def close(self) -> None:
        """Checkpoint so the next start (or a read-only CLI) finds no WAL to replay, then close."""
        with self.write_lock:
            with contextlib.suppress(Exception):
                self._con.execute("CHECKPOINT")
            with self._cursors_lock:
                for cur in self._cursors:
                    with contextlib.suppress(Exception):
                        cur.close()
                self._cursors.clear()
            self._con.close()


def ensure_model_tables(cur: duckdb.DuckDBPyConnection, name: str, task: str, features: dict[str, str]) -> None:
    """Register the model and create (or widen) its typed predictions table (DESIGN.md §9).

    A feature added to config becomes a new nullable column; a removed one is kept, since its history
    is still worth querying.
    """
    now = utcnow()
    cur.execute(
        "INSERT INTO models VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE "
        "SET task = excluded.task, features = excluded.features, updated_at = excluded.updated_at",
        [name, task, json.dumps(features), now, now],
    )
    table = f"predictions_{name}"
    columns = dict(PREDICTION_COLUMNS)
    columns["prediction"] = "DOUBLE" if task == "regression" else "VARCHAR"
    columns.update({feature: kind for feature, kind in features.items()})
    existing = {
        row[0]
        for row in cur.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table]
        ).fetchall()
    }
    if not existing:
        body = ", ".join(f"{quote_ident(c)} {t}" for c, t in columns.items())
        cur.execute(f"CREATE TABLE {quote_ident(table)} ({body})")
        return
    for column, kind in columns.items():
        if column not in existing:
            plain = kind.replace(" NOT NULL", "")
            cur.execute(f"ALTER TABLE {quote_ident(table)} ADD COLUMN {quote_ident(column)} {plain}")


def open_read_only(path: Path) -> duckdb.DuckDBPyConnection:
    """For the CLI when the daemon is down: the file is opened read-only, never migrated."""
    if not path.exists():
        raise StoreError(f"no store at {path}: has the daemon ever run with this state directory?")
    try:
        return duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        raise StoreError(f"cannot open {path} read-only: {exc}") from None
