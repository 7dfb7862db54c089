"""A consistent copy of the store that the `duckdb` shell can open while the daemon keeps writing.

`COPY FROM DATABASE` runs as one statement, hence in one transaction: the copy is a single point in
time. It is written next to the store first (inside the directories the lockdown allows), then moved.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import duckdb

from daemon.store.db import quote_ident


def write_snapshot(cur: duckdb.DuckDBPyConnection, store_path: Path, dest: Path) -> int:
    """Copy the database behind `cur` into `dest`; returns the size in bytes."""
    dest = dest.expanduser().resolve()
    if dest.exists():
        raise FileExistsError(f"{dest} exists; choose a new path")
    if not dest.parent.is_dir():
        raise FileNotFoundError(f"{dest.parent} is not a directory")
    work = store_path.parent / "snapshots"
    work.mkdir(exist_ok=True)
    tmp = work / f"snapshot-{uuid.uuid4().hex}.duckdb"
    source = cur.execute("SELECT current_database()").fetchone()[0]
    alias = "snapshot_" + uuid.uuid4().hex[:8]
    try:
        # READ_WRITE explicitly: from a read-only source (daemon stopped) an attach defaults to read-only.
        cur.execute(f"ATTACH '{tmp}' AS {alias} (READ_WRITE)")
        try:
            cur.execute(f"COPY FROM DATABASE {quote_ident(source)} TO {alias}")
        finally:
            cur.execute(f"DETACH {alias}")
        shutil.move(str(tmp), str(dest))
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
            if leftover.exists():
                os.unlink(leftover)
    return dest.stat().st_size
