"""Inputs of the segments check: the window cut by one categorical feature (slice volumes by a DuckDB GROUP BY,
the drift rows of the largest slices, the labelled predictions known now with their slice), and the
reference cut the same way (per-slice drift profiles and baselines, built once per file and settings)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np

from checks.segments import (
    MISSING,
    Labelled,
    SegmentsReference,
    SegmentsSettings,
    SegmentsWindow,
    categorical_features,
    column_problem,
    reference_slices,
    top_segments,
)
from daemon.config import ModelConfig
from daemon.ingest.schema import reference_reader
from daemon.inputs import InputContext, check_settings, provides
from daemon.sources.performance import float_column
from daemon.sources.point_in_time import LABELS_KNOWN_NAMED
from daemon.sources.reference import ReferenceCache
from daemon.store.db import quote_ident

SEGMENT = "modeltop:segment"  # the slice column's alias: no feature name can contain ':'

_slices: ReferenceCache[SegmentsReference] = ReferenceCache()


def segment_expr(column: str, table: str = "") -> str:
    """The slice of a row: the column as text, NULL as its own slice."""
    prefix = f"{table}." if table else ""
    return f"coalesce({prefix}{quote_ident(column)}::VARCHAR, '{MISSING}')"


def drift_features(model: ModelConfig, settings: SegmentsSettings) -> list[str]:
    return [f for f in (settings.features or model.features) if f in model.features and f != settings.column]


def _empty(model: ModelConfig, categorical: tuple[str, ...]) -> SegmentsWindow:
    nothing = np.empty(0, dtype=object)
    return SegmentsWindow(model.task, tuple(model.features), categorical, {}, nothing, {},
                          Labelled(nothing, nothing, nothing))


@provides("segments_window")
def segments_window(ctx: InputContext) -> SegmentsWindow:
    model = ctx.model
    assert model is not None, "segments inputs are model inputs"
    settings = check_settings(ctx, SegmentsSettings)
    categorical = categorical_features(model.features)
    if column_problem(settings.column, categorical):
        return _empty(model, categorical)  # evaluate names the problem
    table = quote_ident(model.predictions_table)
    now = ctx.now()
    bounds = {"start": now - timedelta(seconds=float(settings.window)), "now": now}
    cur = ctx.store.cursor()
    seg = segment_expr(settings.column)
    volumes = dict(cur.execute(f"SELECT {seg}, count(*) FROM {table} WHERE ts >= $start AND ts <= $now GROUP BY 1",
                               bounds).fetchall())
    top = top_segments(volumes, settings.max_segments)
    features = drift_features(model, settings)
    segment: np.ndarray = np.empty(0, dtype=object)
    columns: dict[str, Any] = {}
    if top:
        # the newest max_rows rows of the judged slices only: drift needs whole columns, the rest needs counts
        selected = ", ".join([f"{seg} AS {quote_ident(SEGMENT)}", *(quote_ident(f) for f in features)])
        columns = cur.execute(
            f"""SELECT {selected} FROM {table} WHERE ts >= $start AND ts <= $now AND {seg} IN (SELECT unnest($top))
                ORDER BY ts DESC LIMIT $limit""", {**bounds, "top": top, "limit": settings.max_rows}).fetchnumpy()
        segment = np.asarray(columns.pop(SEGMENT), dtype=object)
    rows = cur.execute(
        f"""SELECT {segment_expr(settings.column, "p")} AS segment, l.label, p.prediction::VARCHAR AS prediction,
                   p.score
            FROM {table} p JOIN {LABELS_KNOWN_NAMED} l USING (request_id)
            WHERE p.ts >= $start AND p.ts <= $now AND p.prediction IS NOT NULL AND p.error IS NULL""",
        {**bounds, "model": model.name}).fetchnumpy()
    score = float_column(rows["score"])
    labelled = Labelled(np.asarray(rows["segment"], dtype=object), np.asarray(rows["label"]),
                        np.asarray(rows["prediction"]), None if np.isnan(score).all() else score)
    return SegmentsWindow(model.task, tuple(model.features), categorical, volumes, segment, columns, labelled)


@provides("segments_reference")
def segments_reference(ctx: InputContext) -> SegmentsReference | None:
    """None without a reference (or with a column that cannot cut it); the cached slices otherwise."""
    model = ctx.model
    assert model is not None
    settings = check_settings(ctx, SegmentsSettings)
    if model.reference is None or column_problem(settings.column, categorical_features(model.features)):
        return None
    features = drift_features(model, settings)
    depends = (settings.column, tuple(features), settings.min_rows, settings.min_labelled, settings.metric,
               settings.positive_class, settings.reference_max_rows, model.task, model.target,
               tuple(sorted(model.features.items())))
    return _slices.get(model, depends, lambda: _build(ctx, settings, features))


def _build(ctx: InputContext, settings: SegmentsSettings, features: list[str]) -> SegmentsReference:
    model = ctx.model
    assert model is not None and model.reference is not None
    cur = ctx.store.cursor()
    reader = reference_reader(model.reference)
    have = {r[0] for r in cur.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()}
    if settings.column not in have:
        return SegmentsReference(False, {}, {}, None)
    present = [f for f in features if f in have]
    seg = segment_expr(settings.column)
    selected = ", ".join([f"{seg} AS {quote_ident(SEGMENT)}", *(quote_ident(f) for f in present)])
    data = cur.execute(f"SELECT {selected} FROM {reader}").fetchnumpy()
    segment = np.asarray(data.pop(SEGMENT), dtype=object)
    outcomes = None
    if "prediction" in have and model.target in have:
        target = quote_ident(model.target)
        score = "score" if "score" in have else "NULL"
        rows = cur.execute(f"""SELECT {seg} AS segment, {target}::VARCHAR AS y_true, prediction::VARCHAR AS y_pred,
                                      {score}::DOUBLE AS score
                               FROM {reader} WHERE {target} IS NOT NULL AND prediction IS NOT NULL""").fetchnumpy()
        scores = float_column(rows["score"])
        outcomes = Labelled(np.asarray(rows["segment"], dtype=object), np.asarray(rows["y_true"]),
                            np.asarray(rows["y_pred"]), None if np.isnan(scores).all() else scores)
    return reference_slices(segment, data, {f: model.features[f] for f in present}, outcomes, model.task, settings,
                            version=f"{model.reference.name}@{model.reference.stat().st_mtime_ns}")
