"""Spool directories into the store, exactly once.

Files are consumed in name order. `*.jsonl` files are tailed: complete lines after the recorded byte
offset are read, and a partial last line waits for its newline. `*.jsonl.gz`, `*.csv` and `*.parquet`
files are read whole, once (they are written whole and renamed into place by well-behaved writers).
Every batch is appended and its new offset recorded in one transaction, so a crash at any instant
neither loses nor doubles a row (DESIGN.md §7). A replaced file (new inode at the same name) is read from
its start; a truncated one is reported, not silently re-read.

Clean JSONL is loaded by DuckDB's own reader (fast.py); a batch with any bad line is re-read line by line
in Python so that each rejected record reaches the quarantine with its line number and reason.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from daemon.config import ModelConfig
from daemon.ingest import fast
from daemon.ingest.records import LABEL_SCHEMA, RAW_CAP, Rejected, label_row, prediction_row, prediction_schema
from daemon.store.db import Store, quote_ident, utcnow

log = logging.getLogger("modeltop.ingest")

MAX_BYTES_PER_PASS = 64 * 1024 * 1024  # bounds memory; the next pass continues from the offset
WHOLE_FILE_SUFFIXES = (".jsonl.gz", ".csv", ".parquet")
SUFFIXES = (".jsonl", *WHOLE_FILE_SUFFIXES)
SETTLE_S = 10.0  # a whole-file format still changing this recently may still be being written


@dataclass
class IngestReport:
    rows: int = 0
    quarantined: int = 0
    duplicates: int = 0
    bytes: int = 0
    fast_batches: int = 0
    slow_batches: int = 0
    lag_s: float = 0.0  # longest time from a file's last write to its rows being committed
    files: list[str] = field(default_factory=list)


@dataclass
class Batch:
    """What one pass over one file yields, before it is committed."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    rejects: list[tuple[int | None, bytes, str]] = field(default_factory=list)
    consumed: int = 0  # bytes of the file this batch accounts for
    lines: int = 0  # lines (or rows) of the file accounted for so far


def spool_format(path: Path) -> str | None:
    name = path.name
    return next((s for s in sorted(SUFFIXES, key=len, reverse=True) if name.endswith(s)), None)


class SpoolReader:
    """Reads one model's prediction and label spools; call `poll()` from one thread at a time."""

    def __init__(self, store: Store, model: ModelConfig, scratch: Path | None = None) -> None:
        self.store = store
        self.model = model
        self.scratch = scratch or store.path.parent / "ingest-tmp"
        # Files known to be fully consumed, by (source, name) -> (inode, size, mtime): an idle spool then
        # costs one stat per file and no query.
        self._settled: dict[tuple[str, str], tuple[int, int, int]] = {}

    def poll(self) -> IngestReport:
        report = IngestReport()
        self._poll_source("predictions", self.model.predictions, report)
        if self.model.labels is not None:
            self._poll_source("labels", self.model.labels, report)
        return report

    def _poll_source(self, source: str, spool: Path | None, report: IngestReport) -> None:
        if spool is None or not spool.is_dir():
            return
        for path in sorted(p for p in spool.iterdir() if spool_format(p) and p.is_file()):
            try:
                st = path.stat()
                if self._settled.get((source, path.name)) == (st.st_ino, st.st_size, st.st_mtime_ns):
                    continue
                if self._read_file(source, path, report):
                    self._settled[(source, path.name)] = (st.st_ino, st.st_size, st.st_mtime_ns)
            except FileNotFoundError:
                log.info("%s/%s: %s disappeared while being read", self.model.name, source, path.name)

    # -- one file -------------------------------------------------------------------------------

    def _read_file(self, source: str, path: Path, report: IngestReport) -> bool:
        """Read what is new in one file; True when it was already fully consumed (nothing to do)."""
        st = path.stat()
        known = self.store.cursor().execute(
            'SELECT inode, size, "offset", rows FROM ingest_offsets WHERE model = ? AND source = ? AND file = ?',
            [self.model.name, source, path.name],
        ).fetchone()
        if spool_format(path) == ".jsonl":
            return self._read_jsonl(source, path, st, known, report)
        return self._read_whole(source, path, st, known, report)

    def _read_jsonl(self, source: str, path: Path, st: os.stat_result, known: tuple | None,
                    report: IngestReport) -> bool:
        offset, line_no, notes = 0, 0, []
        if known is not None:
            inode, _size, offset, line_no = known
            if inode != st.st_ino:
                notes.append(f"{path.name} was replaced (new inode); reading the new file from its start")
                offset, line_no = 0, 0
            elif st.st_size < offset:
                notes.append(f"{path.name} was truncated from {offset} to {st.st_size} bytes; "
                             "not re-read: new lines are read from the new end")
                offset = st.st_size
        if st.st_size == offset and not notes:
            return known is not None and known[0] == st.st_ino
        if offset == 0 and not notes and _ends_with_newline(path, st.st_size):
            # A complete file read for the first time: DuckDB reads it in place, whatever its size, and
            # Python never holds its bytes. (Its line count is taken from the rows: blank lines are not
            # counted, which only shifts line numbers of lines appended later.)
            if self._commit_fast(source, path, st, 0, 0, None, report):
                return False
        with open(path, "rb") as fh:
            fh.seek(offset)
            chunk = fh.read(min(st.st_size - offset, MAX_BYTES_PER_PASS))
        end = chunk.rfind(b"\n")
        if end < 0 and len(chunk) == MAX_BYTES_PER_PASS:
            notes.append(f"a line longer than {MAX_BYTES_PER_PASS} bytes at byte {offset}; skipped")
            complete = chunk
        else:
            complete = chunk[: end + 1] if end >= 0 else b""  # a partial last line waits for its newline
        committed = False
        if complete and not notes:
            committed = self._commit_fast(source, path, st, offset, line_no, complete, report)
        if not committed:
            batch = self._parse_lines(source, complete, line_no)
            batch.rejects += [(None, b"", note) for note in notes]
            batch.consumed = offset + len(complete)
            self._commit(source, path, st, batch, report)
            report.bytes += len(complete)
            report.slow_batches += 1
        for note in notes:
            log.warning("%s/%s: %s", self.model.name, source, note)
        return False

    def _read_whole(self, source: str, path: Path, st: os.stat_result, known: tuple | None,
                    report: IngestReport) -> bool:
        if known is not None and known[0] == st.st_ino and known[1] == st.st_size:
            return True  # already consumed
        if time.time() - st.st_mtime < SETTLE_S and spool_format(path) == ".jsonl.gz" and not _gzip_complete(path):
            return False  # still being written: wait
        notes = []
        if known is not None:
            notes.append(f"{path.name} changed after it was read; re-reading it (duplicates are kept out)")
        if time.time() - st.st_mtime < 1.0:
            return False  # still being written (whole-file formats should be renamed into place): next poll
        if spool_format(path) != ".jsonl.gz" and self._commit_tabular_fast(source, path, st, notes, report):
            return False
        stat_now = path.stat()
        if (stat_now.st_ino, stat_now.st_size) != (st.st_ino, st.st_size):
            return False  # it changed while we looked: read it when it has settled
        try:
            batch = self._parse_whole(source, path)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is reported, never fatal
            batch = Batch(rejects=[(None, b"", f"cannot read {path.name}: {type(exc).__name__}: {exc}")])
        batch.rejects += [(None, b"", note) for note in notes]
        batch.consumed = st.st_size
        self._commit(source, path, st, batch, report)
        report.slow_batches += 1
        return False

    # -- parsing ---------------------------------------------------------------------------------

    def _to_row(self, source: str) -> Callable[[Any, ModelConfig, datetime], dict[str, Any]]:
        return prediction_row if source == "predictions" else label_row

    def _parse_lines(self, source: str, data: bytes, line_no: int) -> Batch:
        to_row, now, batch = self._to_row(source), utcnow(), Batch()
        for raw in data.split(b"\n")[:-1] if data else []:
            line_no += 1
            text = raw.rstrip(b"\r")
            if not text.strip():
                continue
            try:
                record = json.loads(text.decode("utf-8").lstrip("\ufeff"))
                batch.rows.append(to_row(record, self.model, now))
            except UnicodeDecodeError:
                batch.rejects.append((line_no, text, "not valid UTF-8"))
            except json.JSONDecodeError as exc:
                batch.rejects.append((line_no, text, f"broken JSON: {exc.msg} at column {exc.colno}"))
            except Rejected as exc:
                batch.rejects.append((line_no, text, str(exc)))
        batch.lines = line_no
        return batch

    def _parse_whole(self, source: str, path: Path) -> Batch:
        kind = spool_format(path)
        if kind == ".jsonl.gz":
            try:
                data = gzip.decompress(path.read_bytes())
            except (EOFError, gzip.BadGzipFile, OSError) as exc:
                return Batch(rejects=[(None, b"", f"gzip file is truncated or corrupt: {exc}")])
            if data and not data.endswith(b"\n"):
                data += b"\n"
            return self._parse_lines(source, data, 0)
        if kind == ".csv":
            return self._parse_records(source, _csv_records(path))
        return self._parse_records(source, _parquet_records(path))

    def _parse_records(self, source: str, records: tuple[list[str], Iterable[dict[str, Any]]]) -> Batch:
        """Tabular files: one record per row; columns the model does not know are reported once."""
        columns, rows = records
        to_row, now, batch = self._to_row(source), utcnow(), Batch()
        expected = {"ts", "request_id", "prediction", "score", "latency_ms", "error", "model_version",
                    *self.model.features} if source == "predictions" else {"request_id", "label", "ts"}
        extra = [c for c in columns if c not in expected]
        missing = [c for c in sorted(self.model.features) if c not in columns] if source == "predictions" else []
        if extra:
            batch.rejects.append((None, b"", "extra column(s) ignored: " + ", ".join(extra)))
        if missing:
            batch.rejects.append((None, b"", "missing feature column(s), stored as NULL: " + ", ".join(missing)))
        for number, record in enumerate(rows, start=1):
            try:
                batch.rows.append(to_row(record, self.model, now))
            except Rejected as exc:
                batch.rejects.append((number, json.dumps(record, default=str).encode(), str(exc)))
            batch.lines = number
        return batch

    # -- committing ------------------------------------------------------------------------------

    def _commit_fast(self, source: str, path: Path, st: os.stat_result, offset: int, line_no: int,
                     complete: bytes | None, report: IngestReport) -> bool:
        """DuckDB's JSON reader on a clean batch (`complete`, or the whole file when None)."""
        source_file = path
        if complete is not None:  # the bytes read: exactly what the offset will say (DuckDB reads a copy)
            self.scratch.mkdir(exist_ok=True)
            source_file = self.scratch / f"{self.model.name}-{source}.jsonl"
            source_file.write_bytes(complete)

        typed = fast.jsonl_typed(source_file, self.model) if source == "predictions" else None

        def stage_with(relation: str, types: dict[str, str] | None) -> Callable:
            def stage(tx: duckdb.DuckDBPyConnection, now: datetime) -> _Staged:
                staged = fast.stage(tx, relation, self.model, source, now, native=types)
                if complete is None:
                    _unchanged_since(path, st)
                    return _Staged(staged, [], st.st_size, staged or 0, st.st_size)
                return _Staged(staged, [], offset + len(complete), line_no + complete.count(b"\n"),
                               len(complete))
            return stage

        # typed DOUBLE fields first (cheapest); a batch the typed reader refuses is retried all-JSON
        if typed is not None and self._fast(source, path, st, stage_with(*typed), report):
            return True
        return self._fast(source, path, st, stage_with(fast.jsonl_relation(source_file, self.model, source), None),
                          report)

    def _commit_tabular_fast(self, source: str, path: Path, st: os.stat_result, notes: list[str],
                             report: IngestReport) -> bool:
        """CSV and Parquet through DuckDB's readers, judged by the same SQL as JSONL."""

        def stage(tx: duckdb.DuckDBPyConnection, now: datetime) -> _Staged:
            relation, types, missing, extra = fast.tabular_relation(tx, path, self.model, source, spool_format(path))
            staged = fast.stage(tx, relation, self.model, source, now, native=types)
            _unchanged_since(path, st)
            rejects = [(None, b"", note) for note in notes]
            if extra:
                rejects.append((None, b"", "extra column(s) ignored: " + ", ".join(extra)))
            if missing:
                rejects.append((None, b"", "missing feature column(s), stored as NULL: " + ", ".join(missing)))
            return _Staged(staged, rejects, st.st_size, staged or 0, st.st_size)

        return self._fast(source, path, st, stage, report)

    def _fast(self, source: str, path: Path, st: os.stat_result,
              stage: Callable[[duckdb.DuckDBPyConnection, datetime], _Staged], report: IngestReport) -> bool:
        """Stage, append and record offsets in one transaction; False (nothing written) when the batch
        has anything the SQL cannot accept, so the caller takes the line-by-line path."""
        now = utcnow()
        try:
            with self.store.transaction() as tx:
                staged = stage(tx, now)
                if staged.rows is None:
                    raise _SlowPath
                duplicates = self._append(tx, source)
                rejects = staged.rejects + [(None, json.dumps({"request_id": r}).encode(), "duplicate request_id")
                                            for r in duplicates]
                self._record(tx, source, path.name, st, staged.consumed, staged.lines, now, rejects)
        except (_SlowPath, duckdb.Error) as exc:
            if isinstance(exc, duckdb.Error):
                log.debug("%s/%s: fast path declined %s: %s", self.model.name, source, path.name, exc)
            return False
        finally:
            with contextlib.suppress(duckdb.Error):
                self.store.cursor().execute("DROP TABLE IF EXISTS temp.incoming")
        report.rows += staged.rows - len(duplicates)
        report.duplicates += len(duplicates)
        report.quarantined += len(rejects)
        report.bytes += staged.bytes
        report.lag_s = max(report.lag_s, time.time() - st.st_mtime)
        report.fast_batches += 1
        report.files.append(path.name)
        return True

    def _commit(self, source: str, path: Path, st: os.stat_result, batch: Batch, report: IngestReport) -> None:
        now = utcnow()
        schema = prediction_schema(self.model) if source == "predictions" else LABEL_SCHEMA
        table = _to_arrow(batch, schema)  # before the transaction: a value no column can hold is quarantined
        with self.store.transaction() as tx:
            duplicates: list[str] = []
            if batch.rows:
                tx.register("incoming_arrow", table)
                try:
                    tx.execute("CREATE OR REPLACE TEMP TABLE incoming AS SELECT * FROM incoming_arrow")
                finally:
                    tx.unregister("incoming_arrow")
                duplicates = self._append(tx, source)
                tx.execute("DROP TABLE temp.incoming")
            rejects = batch.rejects + [(None, json.dumps({"request_id": r}).encode(), "duplicate request_id")
                                       for r in duplicates]
            self._record(tx, source, path.name, st, batch.consumed, batch.lines, now, rejects)
        report.rows += len(batch.rows) - len(duplicates)
        report.duplicates += len(duplicates)
        report.quarantined += len(batch.rejects) + len(duplicates)
        report.lag_s = max(report.lag_s, time.time() - st.st_mtime)
        report.files.append(path.name)

    def _append(self, tx: duckdb.DuckDBPyConnection, source: str) -> list[str]:
        """Append temp.incoming; returns request_ids kept out as duplicates (predictions only)."""
        if source == "labels":
            tx.execute("INSERT INTO labels BY NAME SELECT * FROM temp.incoming")
            return []
        table = quote_ident(self.model.predictions_table)
        # EXISTS lets DuckDB build its hash table on the smaller side (a batch, not the whole history).
        stored_before = f"EXISTS (SELECT 1 FROM {table} t WHERE t.request_id = i.request_id)"
        repeated = [request_id for request_id, extra in tx.execute(  # each extra copy within the batch
            "SELECT request_id, count(*) - 1 FROM temp.incoming GROUP BY ALL HAVING count(*) > 1").fetchall()
            for _ in range(extra)]
        duplicates = [r[0] for r in tx.execute(
            f"SELECT request_id FROM temp.incoming i WHERE {stored_before}").fetchall()]
        first_only = "QUALIFY row_number() OVER (PARTITION BY request_id ORDER BY ts) = 1" if repeated else ""
        tx.execute(f"INSERT INTO {table} BY NAME SELECT * FROM temp.incoming i WHERE NOT {stored_before} {first_only}")
        return duplicates + repeated

    def _record(self, tx: duckdb.DuckDBPyConnection, source: str, name: str, st: os.stat_result, consumed: int,
                lines: int, now: datetime, rejects: list[tuple[int | None, bytes, str]]) -> None:
        if rejects:
            tx.executemany(
                "INSERT INTO quarantine VALUES (?, ?, ?, ?, ?, ?, ?)",
                [[now, self.model.name, source, name, line, raw[:RAW_CAP].decode("utf-8", "replace"), reason]
                 for line, raw, reason in rejects],
            )
        tx.execute(
            "INSERT OR REPLACE INTO ingest_offsets VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [self.model.name, source, name, st.st_ino, st.st_size, consumed, lines, now],
        )


@dataclass
class _Staged:
    """A fast-path batch in temp.incoming: its rows (None: needs the slow path), file-level notes, and the
    offset, line count and bytes it accounts for."""

    rows: int | None
    rejects: list[tuple[int | None, bytes, str]]
    consumed: int
    lines: int
    bytes: int


class _SlowPath(Exception):
    """The batch has a line the fast path cannot judge: roll back and take the line-by-line path."""


def _to_arrow(batch: Batch, schema: pa.Schema) -> pa.Table:
    """The batch's rows as one Arrow table. records.py should let through only what the columns hold; if
    a row still cannot be converted, it is moved to the rejects (with its reason) rather than blocking the
    file for ever."""
    try:
        return pa.Table.from_pylist(batch.rows, schema=schema)
    except (pa.ArrowException, OverflowError, TypeError, ValueError, UnicodeError):
        kept = []
        for row in batch.rows:
            try:
                pa.Table.from_pylist([row], schema=schema)
                kept.append(row)
            except (pa.ArrowException, OverflowError, TypeError, ValueError, UnicodeError) as exc:
                raw = json.dumps(row, default=str).encode("utf-8", "replace")
                batch.rejects.append((None, raw, f"cannot be stored: {type(exc).__name__}: {exc}"[:300]))
        batch.rows = kept
        return pa.Table.from_pylist(kept, schema=schema)


def _unchanged_since(path: Path, st: os.stat_result) -> None:
    """A file read in place by DuckDB must still be the size it was when its offset was decided: a writer
    that appended meanwhile would otherwise have lines read now and again from the recorded offset."""
    now = path.stat()
    if (now.st_ino, now.st_size) != (st.st_ino, st.st_size):
        raise _SlowPath


def _ends_with_newline(path: Path, size: int) -> bool:
    if size == 0:
        return False
    with open(path, "rb") as fh:
        fh.seek(size - 1)
        return fh.read(1) == b"\n"


def _gzip_complete(path: Path) -> bool:
    try:
        with gzip.open(path, "rb") as fh:
            while fh.read(1 << 20):
                pass
        return True
    except (EOFError, OSError):
        return False


def _csv_records(path: Path) -> tuple[list[str], Iterable[dict[str, Any]]]:
    text = path.read_bytes().decode("utf-8-sig", errors="replace")
    reader = csv.DictReader(io.StringIO(text))
    columns = list(reader.fieldnames or [])
    rows = ({k: (v if v != "" else None) for k, v in row.items() if k is not None} for row in reader)
    return columns, rows


def _parquet_records(path: Path) -> tuple[list[str], Iterable[dict[str, Any]]]:
    table = pq.read_table(path)
    return table.column_names, table.to_pylist()


def spool_dirs(model: ModelConfig) -> list[Path]:
    return [p for p in (model.predictions, model.labels) if p is not None]


def ensure_spools(model: ModelConfig) -> None:
    """Create missing spool directories so a model server can start writing before its first file."""
    for d in spool_dirs(model):
        os.makedirs(d, exist_ok=True)
