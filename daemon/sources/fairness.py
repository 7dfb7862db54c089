"""Input of the fairness check: per group of the protected attribute, the counts both measures need, in one
DuckDB GROUP BY over the window's predictions joined with the labels known now (point in time)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from checks.fairness import FairnessSettings, FairnessWindow, GroupCounts
from checks.segments import categorical_features, column_problem
from daemon.inputs import InputContext, check_settings, provides
from daemon.sources.point_in_time import LABELS_KNOWN_NAMED
from daemon.store.db import quote_ident


@provides("fairness_counts")
def fairness_counts(ctx: InputContext) -> FairnessWindow:
    model = ctx.model
    assert model is not None, "fairness_counts is a model input"
    settings = check_settings(ctx, FairnessSettings)
    categorical = categorical_features(model.features)
    empty = np.zeros(0, dtype=np.int64)
    if model.task != "classification" or column_problem(settings.protected, categorical, "protected"):
        return FairnessWindow(model.task, categorical, GroupCounts((), empty, empty, empty, empty))  # evaluate says why
    now = ctx.now()
    # A NULL protected value is no group: those rows are left out (the data_quality check counts nulls).
    rows = ctx.store.cursor().execute(
        f"""SELECT p.{quote_ident(settings.protected)}::VARCHAR AS grp, count(*) AS n,
                   count(*) FILTER (WHERE p.prediction::VARCHAR = $positive) AS predicted_positive,
                   count(*) FILTER (WHERE l.label = $positive) AS label_positive,
                   count(*) FILTER (WHERE l.label = $positive AND p.prediction::VARCHAR = $positive) AS true_positive
            FROM {quote_ident(model.predictions_table)} p LEFT JOIN {LABELS_KNOWN_NAMED} l USING (request_id)
            WHERE p.ts >= $start AND p.ts <= $now AND p.prediction IS NOT NULL AND p.error IS NULL
              AND p.{quote_ident(settings.protected)} IS NOT NULL
            GROUP BY grp ORDER BY grp""",
        {"positive": settings.positive_class, "model": model.name, "now": now,
         "start": now - timedelta(seconds=float(settings.window))}).fetchnumpy()
    counts = GroupCounts(tuple(str(g) for g in rows["grp"]), *(np.asarray(rows[k], dtype=np.int64) for k in (
        "n", "predicted_positive", "label_positive", "true_positive")))
    return FairnessWindow(model.task, categorical, counts)
