"""Running one check: gather inputs, evaluate, record metrics, the run and alert changes in one transaction."""

from __future__ import annotations

import dataclasses
import json
import logging
import time

import checks
from checks.base import CheckResult, Metric, Status
from daemon import alerts
from daemon.config import HOST_SCOPE, CheckConfig
from daemon.inputs import InputContext, gather

log = logging.getLogger("modeltop.runner")


def run_check(ctx: InputContext, check: CheckConfig, backfill_id: int | None = None) -> CheckResult:
    """Never raises for a failing check: the failure is recorded as status `error` with its reason.

    With `backfill_id` the result goes to the backfill_* tables under that id instead of the live ones
    (a replayed window must neither page anyone nor touch today's alerts), and is not logged per run.
    """
    spec = checks.get(check.name)
    model = ctx.model.name if ctx.model else HOST_SCOPE
    ts = ctx.now()
    started = time.perf_counter()
    try:
        result = spec.evaluate(gather(spec.inputs, dataclasses.replace(ctx, check=check)), check.settings)
    except Exception as exc:  # a check bug must not take the scheduler down
        # one line per failure (the reason is also in check_runs); the traceback only when debugging
        log.error("check %s/%s failed: %s: %s", model, check.name, type(exc).__name__, exc,
                  exc_info=log.isEnabledFor(logging.DEBUG))
        result = CheckResult(Status.ERROR, f"{type(exc).__name__}: {exc}")
    duration = time.perf_counter() - started
    own = (
        Metric("check_duration_seconds", duration),
        Metric("check_success", 0.0 if result.status is Status.ERROR else 1.0),
    )
    prefix, extra, lead = ("", "", []) if backfill_id is None else ("backfill_", "backfill_id, ", [backfill_id])
    marks = "?, " * len(lead)
    with ctx.store.transaction() as cur:
        metrics = (*result.metrics, *own)
        # one multi-row statement: executemany costs a round trip per row, which dominated cheap checks
        cur.execute(
            f'INSERT INTO {prefix}metrics ({extra}ts, model, "check", metric, dims, value) VALUES '
            + ", ".join([f"({marks}?, ?, ?, ?, ?, ?)"] * len(metrics)),
            [value for m in metrics for value in (
                *lead, ts, model, check.name, m.name,
                json.dumps(dict(m.dims), sort_keys=True, separators=(",", ":")), m.value)],
        )
        cur.execute(
            f'INSERT INTO {prefix}check_runs ({extra}ts, model, "check", status, reason, duration_s) '
            f"VALUES ({marks}?, ?, ?, ?, ?, ?)",
            [*lead, ts, model, check.name, result.status.value, result.reason, duration],
        )
        event = alerts.apply_status(cur, model, check.name, result.status, result.reason, ts, backfill_id)
    if event and backfill_id is None:
        log.warning("alert %s: %s/%s %s: %s", event, model, check.name, result.status.value, result.reason)
    return result
