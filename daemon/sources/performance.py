"""Input of the performance check: the window's predictions joined with the labels known now (point in
time), and the reference's predictions and targets when the reference file carries them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np

from checks.performance import PerformanceSettings
from daemon.ingest.schema import reference_reader
from daemon.inputs import InputContext, check_settings, provides
from daemon.sources.point_in_time import labels_known_at
from daemon.sources.reference import ReferenceCache
from daemon.store.db import quote_ident

_outcomes: ReferenceCache[dict[str, Any] | None] = ReferenceCache()


def reference_outcomes(ctx: InputContext) -> dict[str, Any] | None:
    """y_true/y_pred/score of the reference when it has a `prediction` column; None otherwise."""
    model = ctx.model
    assert model is not None
    if model.reference is None or not model.reference.exists():
        return None
    return _outcomes.get(model, model.target, lambda: _reference_outcomes(ctx))


def _reference_outcomes(ctx: InputContext) -> dict[str, Any] | None:
    model = ctx.model
    assert model is not None and model.reference is not None
    cur = ctx.store.cursor()
    reader = reference_reader(model.reference)
    columns = {r[0] for r in cur.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()}
    outcome = None
    if "prediction" in columns and model.target in columns:
        score = "score" if "score" in columns else "NULL"
        rows = cur.execute(f"SELECT {quote_ident(model.target)}::VARCHAR, prediction::VARCHAR, {score}::DOUBLE "
                           f"FROM {reader} WHERE {quote_ident(model.target)} IS NOT NULL AND prediction IS NOT NULL"
                           ).fetchnumpy()
        values = list(rows.values())
        outcome = {"y_true": np.asarray(values[0]), "y_pred": np.asarray(values[1]),
                   "score": None if score == "NULL" else float_column(values[2])}
    return outcome


@provides("performance_window")
def performance_window(ctx: InputContext) -> dict[str, Any]:
    model = ctx.model
    assert model is not None
    settings = check_settings(ctx, PerformanceSettings)
    now = ctx.now()
    start = now - timedelta(seconds=float(settings.window))
    known, params = labels_known_at(model.name, now)
    rows = ctx.store.cursor().execute(
        f"""SELECT l.label, p.prediction::VARCHAR AS prediction, p.score
            FROM {quote_ident(model.predictions_table)} p JOIN {known} l USING (request_id)
            WHERE p.ts >= ? AND p.ts <= ? AND p.prediction IS NOT NULL AND p.error IS NULL""",
        [*params, start, now]).fetchnumpy()
    score = float_column(rows["score"])
    if np.isnan(score).all():
        score = None
    return {"task": model.task, "y_true": np.asarray(rows["label"]), "y_pred": np.asarray(rows["prediction"]),
            "score": score, "reference": reference_outcomes(ctx)}


def float_column(column: Any) -> np.ndarray:
    """A DuckDB numpy column (masked where NULL) as floats with NaN for NULL."""
    return np.ma.filled(np.ma.asarray(column).astype(float), np.nan)
