"""Alert lifecycle driven by check status changes: open -> acknowledged -> resolved.

One active alert per (model, check) at most, so a flapping check updates its alert instead of
spamming new ones; an acknowledged alert that gets worse is reopened, because the person who
acknowledged it accepted the old severity, not the new one.
"""

from __future__ import annotations

from datetime import datetime

import duckdb

from checks.base import Status

ALARMING = {Status.WARN: "warn", Status.CRIT: "crit", Status.ERROR: "error"}
_RANK = {"warn": 1, "error": 2, "crit": 3}


def apply_status(
    cur: duckdb.DuckDBPyConnection, model: str, check: str, status: Status, reason: str, ts: datetime,
    backfill_id: int | None = None,
) -> str | None:
    """Update alerts for one result inside the caller's transaction; returns what happened, if anything.

    With `backfill_id`, the same lifecycle runs in `backfill_alerts` within that backfill only: the alerts a
    replay would have opened, kept apart from the live ones.
    """
    table, scope, scope_args = ("alerts", "", []) if backfill_id is None else (
        "backfill_alerts", " AND backfill_id = ?", [backfill_id])
    active = cur.execute(
        f"""SELECT id, severity, state FROM {table} WHERE model = ? AND "check" = ? AND state <> 'resolved'
            {scope} ORDER BY id DESC LIMIT 1""",
        [model, check, *scope_args],
    ).fetchone()
    if status in ALARMING:
        severity = ALARMING[status]
        if active is None:
            extra, marks = ("", "") if backfill_id is None else ("backfill_id, ", "?, ")
            cur.execute(
                f"""INSERT INTO {table} ({extra}model, "check", severity, state, reason, opened_at, last_seen_at)
                    VALUES ({marks}?, ?, ?, 'open', ?, ?, ?)""",
                [*scope_args, model, check, severity, reason, ts, ts],
            )
            return "opened"
        alert_id, old_severity, state = active
        worse = _RANK[severity] > _RANK[old_severity]
        cur.execute(
            f"UPDATE {table} SET severity = ?, reason = ?, last_seen_at = ?, state = ? WHERE id = ?",
            [severity, reason, ts, "open" if worse else state, alert_id],
        )
        return "escalated" if worse else None
    if status is Status.OK and active is not None:
        cur.execute(
            f"UPDATE {table} SET state = 'resolved', resolved_at = ?, last_seen_at = ? WHERE id = ?",
            [ts, ts, active[0]],
        )
        return "resolved"
    return None


def acknowledge(cur: duckdb.DuckDBPyConnection, alert_id: int, who: str, ts: datetime) -> bool:
    """Mark an open alert acknowledged; False when there is no such open alert."""
    row = cur.execute("SELECT state FROM alerts WHERE id = ?", [alert_id]).fetchone()
    if row is None or row[0] != "open":
        return False
    cur.execute(
        "UPDATE alerts SET state = 'acknowledged', acknowledged_at = ?, acknowledged_by = ? WHERE id = ?",
        [ts, who, alert_id],
    )
    return True
