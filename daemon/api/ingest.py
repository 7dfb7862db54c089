"""HTTP ingest: a batch of records posted to the API becomes one spool file, read at once.

The batch takes the same road as a file a model server drops into the spool (DESIGN.md §7): it is written
to a temporary file in the model's spool directory and fsynced, renamed to `http-<UTC time>-<id>.jsonl`,
and the model's SpoolReader polls right away — same validation, same quarantine, same exactly-once
bookkeeping. Only after the rows and the file's offset are committed does the sender get its answer, so a
200 means stored; a sender that got no answer re-sends, and the re-sent predictions are kept out as
duplicates. The file is deleted once it has been read: the store holds the rows and the quarantine holds
the rejects with their line numbers, and one file per request would otherwise pile up in the spool.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemon.config import ModelConfig
from daemon.store.db import utcnow

if TYPE_CHECKING:
    from daemon.service import Daemon

log = logging.getLogger("modeltop.api")

SOURCES = ("predictions", "labels")
REJECTS_SHOWN = 100  # the answer lists this many rejected records; the quarantine table has them all
DUPLICATE = "duplicate request_id"  # the reason the spool reader gives a repeated prediction


class BadBatch(ValueError):
    """A body that cannot become a batch (empty, or a broken JSON array); the message says why."""


def to_ndjson(body: bytes) -> tuple[bytes, int]:
    """(NDJSON to spool, number of records). A JSON array is re-written one record per line; NDJSON is
    kept as it is (a bad line is quarantined like any file's), with a final newline added."""
    start = body.lstrip().removeprefix(b"\xef\xbb\xbf").lstrip()
    if not start:
        raise BadBatch("the body is empty: send NDJSON (one JSON record per line) or a JSON array of records")
    if start.startswith(b"["):
        try:
            records = json.loads(start)
        except UnicodeDecodeError:
            raise BadBatch("the JSON array is not valid UTF-8") from None
        except json.JSONDecodeError as exc:
            raise BadBatch(f"the body starts with '[' but is not a JSON array: {exc.msg} at line {exc.lineno} "
                           f"column {exc.colno}") from None
        if not isinstance(records, list) or not records:
            raise BadBatch("the JSON array is empty")
        data = b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in records)
        return data, len(records)
    data = body if body.endswith(b"\n") else body + b"\n"  # a last line without newline would wait forever
    return data, sum(1 for line in data.split(b"\n") if line.strip())


def spool_of(model: ModelConfig, source: str) -> Path | None:
    return model.predictions if source == "predictions" else model.labels


def ingest_batch(daemon: Daemon, model: ModelConfig, source: str, data: bytes, records: int) -> dict[str, Any]:
    """Spool `data`, have the model's reader read it, and say what became of its records."""
    spool = spool_of(model, source)
    assert spool is not None and daemon.store is not None
    spool.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex
    temp = spool / f".http-{token}.tmp"  # not a spool suffix: the reader never sees a half-written batch
    _write_synced(temp, data)
    try:
        with daemon.ingest_lock(model.name):
            # Named under the lock, so the batches of one model are named (and read) in the order they come.
            name = f"http-{utcnow():%Y%m%dT%H%M%S%f}-{token[:8]}.jsonl"
            os.rename(temp, spool / name)
            _sync_dir(spool)
            try:
                daemon.poll_spools(model.name)
            except Exception:  # the file is safe in the spool: the scheduled ingest takes it from here
                log.exception("ingest %s/%s: reading %s failed; the next scheduled poll retries",
                              model.name, source, name)
                return {"file": name, "queued": True}
            outcome = _outcome(daemon.store.cursor(), model.name, source, name, records)
            if outcome is None:
                return {"file": name, "queued": True}
            _remove_consumed(daemon, model.name, source, spool)
            return outcome
    finally:
        temp.unlink(missing_ok=True)  # only still there when something failed before the rename


def _outcome(cur: Any, model: str, source: str, name: str, records: int) -> dict[str, Any] | None:
    key = [model, source, name]
    offsets = cur.execute(
        'SELECT size, "offset" FROM ingest_offsets WHERE model = ? AND source = ? AND file = ?', key).fetchone()
    if offsets is None or offsets[1] < offsets[0]:
        return None
    rejects = cur.execute(
        "SELECT line, reason, raw FROM quarantine WHERE model = ? AND source = ? AND file = ? "
        "ORDER BY line NULLS LAST", key).fetchall()
    duplicates = sum(1 for _, reason, _ in rejects if reason == DUPLICATE)
    shown = []
    for line, reason, raw in rejects[:REJECTS_SHOWN]:
        item: dict[str, Any] = {"line": line, "reason": reason}
        if reason == DUPLICATE:
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                item["request_id"] = json.loads(raw).get("request_id")
        shown.append(item)
    return {"accepted": records - len(rejects), "quarantined": len(rejects), "duplicates": duplicates,
            "file": name, "rejected": shown}


def _remove_consumed(daemon: Daemon, model: str, source: str, spool: Path) -> None:
    """Delete HTTP batch files that were read to their end (this one, and any a crash left behind) and
    their offset rows. Safe at any instant: the rows are committed, and a file that is gone is not re-read."""
    assert daemon.store is not None
    cur = daemon.store.cursor()
    for path in spool.glob("http-*.jsonl"):
        with contextlib.suppress(FileNotFoundError):
            st = path.stat()
            known = cur.execute(
                'SELECT inode, "offset" FROM ingest_offsets WHERE model = ? AND source = ? AND file = ?',
                [model, source, path.name]).fetchone()
            if known is None or (known[0], known[1]) != (st.st_ino, st.st_size):
                continue
            path.unlink()
            with daemon.store.transaction() as tx:
                tx.execute("DELETE FROM ingest_offsets WHERE model = ? AND source = ? AND file = ?",
                           [model, source, path.name])


def remove_stale_temp_files(models: tuple[ModelConfig, ...]) -> None:
    """At start: batches a crashed daemon was still writing were never answered, so their senders re-send."""
    for model in models:
        for source in SOURCES:
            spool = spool_of(model, source)
            if spool is not None and spool.is_dir():
                for temp in spool.glob(".http-*.tmp"):
                    temp.unlink(missing_ok=True)


def _write_synced(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
