"""Input of the `labels` check: label coverage and delay over a window of predictions, in one DuckDB query."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from checks.labels import LabelsSettings
from daemon.inputs import InputContext, provides
from daemon.store.db import quote_ident, utcnow

CHECK = "labels"


def label_lag(cur: Any, model: str, table: str, window_s: float, label_age_s: float,
              now: datetime | None = None) -> dict[str, Any]:
    """Predictions of `table` with ts between `window_s` and `label_age_s` seconds ago (`due`), how many of
    them have a label in `labels` (`labelled`), and the p50/p90 seconds from prediction to its first label."""
    now = now or utcnow()
    start, end = now - timedelta(seconds=window_s), now - timedelta(seconds=label_age_s)
    due, labelled, quantiles = cur.execute(
        f"""WITH due AS (SELECT request_id, ts FROM {quote_ident(table)} WHERE ts > ? AND ts <= ?),
                 first_label AS (
                     SELECT request_id, min(ts) AS label_ts FROM labels
                     WHERE model = ? AND ts <= ? AND request_id IN (SELECT request_id FROM due)
                     GROUP BY request_id)
            SELECT count(*), count(l.label_ts),
                   quantile_cont(greatest(epoch_us(l.label_ts) - epoch_us(d.ts), 0) / 1e6, [0.5, 0.9])
                       FILTER (WHERE l.label_ts IS NOT NULL)  -- greatest(NULL, 0) is 0, not NULL
            FROM due d LEFT JOIN first_label l USING (request_id)""",
        [start, end, model, now],
    ).fetchone()
    p50, p90 = quantiles if quantiles is not None else (None, None)
    return {"due": int(due), "labelled": int(labelled), "delay_p50": p50, "delay_p90": p90}


@provides("label_lag")
def _label_lag(ctx: InputContext) -> dict[str, Any] | None:
    assert ctx.model is not None, "label_lag is a model input"
    if ctx.model.labels is None:
        return None
    settings = ctx.check.settings if ctx.check is not None and ctx.check.name == CHECK else LabelsSettings()
    return label_lag(ctx.store.cursor(), ctx.model.name, ctx.model.predictions_table, float(settings.window),
                     float(settings.label_age), ctx.now())
