"""Inputs of the `service` check: one DuckDB query over the prediction window, and the optional scrape.

The window's counts and latency percentiles are computed inside DuckDB (DESIGN.md §6): one scan of the
window, however many rows it holds, and a handful of numbers back to Python.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from checks.service import ServiceSettings, settings_problem
from daemon.inputs import InputContext, check_settings, provides
from daemon.sources import prometheus
from daemon.store.db import quote_ident, utcnow


def settings_of(ctx: InputContext) -> ServiceSettings:
    assert ctx.model is not None, "service inputs are model inputs"
    return check_settings(ctx, ServiceSettings)


def window_summary(cur: Any, table: str, window_s: float, now: datetime | None = None) -> dict[str, Any]:
    """Counts and latency percentiles of the rows of `table` with ts in the last `window_s` seconds.

    `covered_s` is how much of the window the model has been logging for: the whole window when a row
    older than it exists, else the time since the first row (0 when there is none).
    """
    now = now or utcnow()
    start = now - timedelta(seconds=window_s)
    t = quote_ident(table)
    row = cur.execute(
        f"""SELECT count(*), count_if(error IS NOT NULL), count(latency_ms),
                   quantile_cont(latency_ms, [0.5, 0.95, 0.99]),
                   epoch(?::TIMESTAMP) - epoch(min(ts)),
                   EXISTS (SELECT 1 FROM {t} WHERE ts <= ?)
            FROM {t} WHERE ts > ? AND ts <= ?""",
        [now, start, start, now],
    ).fetchall()[0]
    requests, errors, timed, quantiles, since_first, older = row
    requests, errors, timed = int(requests or 0), int(errors or 0), int(timed or 0)
    p50, p95, p99 = quantiles if quantiles is not None else (None, None, None)
    covered = float(window_s) if older else float(since_first or 0.0)
    if requests and not older:
        covered = max(covered, 1e-3)  # rows exist: some of the window is covered even if they are all "now"
    return {"requests": requests, "errors": errors, "timed": timed, "p50": p50, "p95": p95, "p99": p99,
            "window_s": float(window_s), "covered_s": covered}


@provides("service_window")
def _service_window(ctx: InputContext) -> dict[str, Any]:
    settings = settings_of(ctx)
    assert ctx.model is not None
    return window_summary(ctx.store.cursor(), ctx.model.predictions_table, max(float(settings.window), 0.0),
                          ctx.now())


@provides("service_scrape")
def _service_scrape(ctx: InputContext) -> dict[str, Any] | None:
    settings = settings_of(ctx)
    if not settings.prometheus_url or settings_problem(settings):
        return None  # nothing to scrape, or settings the check will report as bad
    assert ctx.model is not None
    return prometheus.scrape(ctx.model.name, settings.prometheus_url, float(settings.prometheus_timeout),
                             settings.prometheus_series)
