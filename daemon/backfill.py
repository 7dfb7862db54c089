"""Backfill: replay a model's checks over past windows, point in time, to answer "what would have fired?".

Each evaluation time T (since + every, since + 2 every, ..., until) runs every selected check as of T: the
check's own window ends at T, and only labels whose arrival ts is <= T count (`InputContext.at`), so a
replay sees exactly what a daemon running at T would have seen, never a label that came later. Results,
metrics and the alerts the replay would have opened and resolved go to the backfill_* tables under the
backfill's id, never the live tables: replaying last month must not page anyone, and must not resolve or
reopen today's alerts. Only checks whose inputs can be read as of a past time take part (CheckSpec
.historical); host resources and Prometheus scrapes exist only now.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import checks
from daemon.config import CheckConfig, DaemonSettings, ModelConfig
from daemon.durations import format_duration, parse_duration
from daemon.inputs import InputContext
from daemon.runner import run_check
from daemon.sources.host import HostSampler
from daemon.store.db import Store, utcnow

MAX_WINDOWS = 20_000  # evaluation times per backfill: a typo in --every must not queue a million runs


class BackfillError(ValueError):
    """The request cannot be run as asked; the message says what to change."""


@dataclass(frozen=True)
class BackfillPlan:
    model: ModelConfig
    checks: tuple[CheckConfig, ...]
    times: tuple[datetime, ...]  # evaluation times (window ends), naive UTC
    since: datetime
    until: datetime
    every: float


def parse_time(value: object, name: str, now: datetime | None = None) -> datetime:
    """An ISO-8601 time (naive = UTC; a date alone is its midnight) or a duration meaning "that long ago"."""
    now = now or utcnow()
    if isinstance(value, str):
        try:
            return now - timedelta(seconds=parse_duration(value))
        except ValueError:
            pass
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            pass
        else:
            return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed
    raise BackfillError(f"--{name} must be an ISO-8601 time (2026-11-01, 2026-11-01T06:00+01:00) or a duration "
                        f"ago (7d), not {value!r}")


def plan(model: ModelConfig, since: datetime, until: datetime, every: float,
         names: tuple[str, ...] = ()) -> BackfillPlan:
    """Validate a request against the model's configured checks; BackfillError says what is wrong."""
    if every <= 0:
        raise BackfillError("--every must be a positive duration such as 1h")
    if until <= since:
        raise BackfillError(f"--until ({until:%Y-%m-%d %H:%M}) must be after --since ({since:%Y-%m-%d %H:%M})")
    if until > utcnow() + timedelta(minutes=1):
        raise BackfillError(f"--until ({until:%Y-%m-%d %H:%M} UTC) is in the future")
    count = int((until - since).total_seconds() // every)
    if count < 1:
        raise BackfillError(f"--every {format_duration(every)} is longer than the period: no window to evaluate")
    if count > MAX_WINDOWS:
        raise BackfillError(f"{count} windows at --every {format_duration(every)}; at most {MAX_WINDOWS}: "
                            "use a longer --every or a shorter period")
    historical = [c for c in model.checks if checks.get(c.name).historical]
    if names:
        configured = {c.name for c in model.checks}
        unknown = [n for n in names if n not in configured]
        if unknown:
            raise BackfillError(f"model {model.name!r} has no check {', '.join(map(repr, unknown))} in its config "
                                f"(configured: {', '.join(sorted(configured)) or 'none'})")
        live_only = [n for n in names if not checks.get(n).historical]
        if live_only:
            raise BackfillError(f"{', '.join(live_only)} cannot be replayed: it reads live state, not history "
                                f"(replayable: {', '.join(c.name for c in historical) or 'none'})")
        historical = [c for c in historical if c.name in names]
    if not historical:
        raise BackfillError(f"model {model.name!r} has no check that can be replayed over history")
    times = tuple(since + timedelta(seconds=every * k) for k in range(1, count + 1))
    return BackfillPlan(model, tuple(historical), times, since, until, every)


def run(store: Store, daemon: DaemonSettings, host: HostSampler, backfill: BackfillPlan, actor: str,
        should_stop: Callable[[], bool] = lambda: False) -> dict[str, Any]:
    """Evaluate the plan, recording as it goes; returns the summary the CLI prints (also kept in `backfills`)."""
    names = [c.name for c in backfill.checks]
    with store.transaction() as cur:
        backfill_id = cur.execute(
            """INSERT INTO backfills (model, checks, since, "until", every_s, requested_by, started_at, state)
               VALUES (?, ?, ?, ?, ?, ?, ?, 'running') RETURNING id""",
            [backfill.model.name, json.dumps(names), backfill.since, backfill.until, backfill.every, actor, utcnow()],
        ).fetchone()[0]
    started = time.perf_counter()
    done, status = 0, "done"
    statuses: dict[str, Counter[str]] = {name: Counter() for name in names}
    try:
        for at in backfill.times:
            if should_stop():
                status = "interrupted"
                break
            ctx = InputContext(store, daemon, backfill.model, host, at=at)
            for check in backfill.checks:
                statuses[check.name][run_check(ctx, check, backfill_id).status.value] += 1
            done += 1
    except Exception:
        status = "failed"
        raise
    finally:
        with store.transaction() as cur:
            cur.execute("UPDATE backfills SET finished_at = ?, windows = ?, state = ? WHERE id = ?",
                        [utcnow(), done, status, backfill_id])
    return summary(store, backfill_id) | {"seconds": round(time.perf_counter() - started, 2),
                                          "statuses": {k: dict(v) for k, v in statuses.items()}}


def summary(store: Store, backfill_id: int) -> dict[str, Any]:
    """The backfill's row and the alerts it would have opened, oldest first."""
    cur = store.cursor()
    row = cur.execute("""SELECT model, checks, since, "until", every_s, windows, state FROM backfills
                         WHERE id = ?""", [backfill_id]).fetchone()
    alerts = cur.execute(
        """SELECT "check", severity, opened_at, resolved_at, reason FROM backfill_alerts
           WHERE backfill_id = ? ORDER BY opened_at, id""", [backfill_id]).fetchall()
    model, names, since, until, every, windows, status = row
    return {
        "backfill_id": backfill_id, "model": model, "checks": json.loads(names), "since": since.isoformat(),
        "until": until.isoformat(), "every_s": every, "windows": windows, "state": status,
        "alerts": [{"check": c, "severity": s, "opened_at": o.isoformat(),
                    "resolved_at": r.isoformat() if r else None, "reason": why} for c, s, o, r, why in alerts],
    }
