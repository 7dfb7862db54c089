"""Inputs of prediction_drift and label_drift: the window's outputs (or its arrived labels) and a profile of
the same columns in the baseline, either the reference file's (built once per file) or the model's own
history before the window (built per run: it moves with the window)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import numpy as np

from checks.drift import DriftWindow
from checks.label_drift import LabelDriftSettings
from checks.prediction_drift import Comparison, PredictionDriftSettings
from checks.stats.profile import Kind, ReferenceProfile
from daemon.config import ModelConfig
from daemon.durations import format_duration
from daemon.ingest.schema import reference_reader
from daemon.inputs import InputContext, check_settings, provides
from daemon.sources.point_in_time import labels_known_at
from daemon.sources.reference import ReferenceCache
from daemon.store.db import quote_ident

_reference_outputs: ReferenceCache[ReferenceProfile | None] = ReferenceCache()
_reference_labels: ReferenceCache[ReferenceProfile | None] = ReferenceCache()
SAMPLE_SEED = 0  # the history baseline's sample is repeatable: the same data gives the same verdict


def _cast(expression: str, kind: Kind) -> str:
    return f"TRY_CAST({expression} AS DOUBLE)" if kind == "numeric" else f"{expression}::VARCHAR"


def _select(kinds: Mapping[str, Kind], source: Mapping[str, str]) -> str:
    """`kinds` columns as typed expressions over `source` (column -> SQL expression)."""
    return ", ".join(f"{_cast(source[name], kind)} AS {quote_ident(name)}" for name, kind in kinds.items())


def _reference_columns(ctx: InputContext, model: ModelConfig) -> set[str]:
    assert model.reference is not None
    reader = reference_reader(model.reference)
    return {row[0] for row in ctx.store.cursor().execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()}


def _reference_profile(ctx: InputContext, cache: ReferenceCache[ReferenceProfile | None], kinds: Mapping[str, Kind],
                       source: Mapping[str, str], max_rows: int) -> ReferenceProfile | None:
    """The profile of the reference file's `kinds` columns it has (None when it lacks the first one)."""
    model = ctx.model
    assert model is not None and model.reference is not None

    def build() -> ReferenceProfile | None:
        available = _reference_columns(ctx, model)
        present = {name: kind for name, kind in kinds.items() if source[name] in available}
        if next(iter(kinds)) not in present:
            return None
        rows = ctx.store.cursor().execute(
            f"SELECT {_select(present, {n: quote_ident(source[n]) for n in present})} "
            f"FROM {reference_reader(model.reference)}").fetchnumpy()
        return ReferenceProfile.build(rows, present, max_rows=max_rows,
                                      version=f"{model.reference.name}@{model.reference.stat().st_mtime_ns}")

    return cache.get(model, (tuple(kinds.items()), tuple(source.items()), max_rows), build)


def _history_profile(ctx: InputContext, query: str, params: list[Any], kinds: Mapping[str, Kind],
                     max_rows: int) -> ReferenceProfile | None:
    rows = ctx.store.cursor().execute(
        f"SELECT * FROM ({query}) USING SAMPLE reservoir({int(max_rows)} ROWS) REPEATABLE ({SAMPLE_SEED})",
        params).fetchnumpy()
    if not rows or len(next(iter(rows.values()))) == 0:
        return None
    return ReferenceProfile.build(rows, kinds, max_rows=None)


def _compare(ctx: InputContext, settings: PredictionDriftSettings, kinds: dict[str, Kind], window_query: str,
             query_params: list[Any], reference_source: Mapping[str, str],
             cache: ReferenceCache[ReferenceProfile | None], what: str) -> Comparison:
    """Read the window, pick and build the baseline, and keep the columns both sides have.

    `window_query` (with `query_params`, then a start time) selects `kinds` for the predictions `p` with
    `p.ts >= ?`; the end bound is added here. It is run for the window
    ([now - window, now], newest max_rows) and for history ([start - history, start), sampled).
    """
    model = ctx.model
    assert model is not None
    now = ctx.now()
    start = now - timedelta(seconds=float(settings.window))
    cur = ctx.store.cursor()
    data: dict[str, Any] = cur.execute(f"{window_query} AND p.ts <= ? ORDER BY p.ts DESC LIMIT ?",
                                       [*query_params, start, now, settings.max_rows]).fetchnumpy()
    n_rows = len(next(iter(data.values()))) if data else 0
    # a column the model does not log (scores of a model that only gives classes) is not compared
    logged = {name: kind for name, kind in kinds.items()
              if name == next(iter(kinds)) or _has_values(data.get(name))}

    profile, source, missing = None, "reference", ""
    if settings.baseline != "history" and model.reference is not None and model.reference.exists():
        # cached per reference file: None when the file lacks the column, and then "auto" uses history
        profile = _reference_profile(ctx, cache, kinds, reference_source, settings.reference_max_rows)
    if settings.baseline == "reference":
        if model.reference is None:
            missing = 'the model has no `reference` file (set one, or baseline = "history")'
        elif not model.reference.exists():
            missing = f"the reference file {model.reference} does not exist"
        else:
            missing = f"the reference file has no `{reference_source[next(iter(kinds))]}` column"
    elif profile is None:
        history_start = start - timedelta(seconds=float(settings.history))
        profile = _history_profile(ctx, f"{window_query} AND p.ts < ?", [*query_params, history_start, start],
                                   logged, settings.reference_max_rows)
        missing = f"no {what} in the {format_duration(settings.history)} before the window to compare with"
        source = "history"
    if profile is None:
        return Comparison(DriftWindow(data, n_rows), None, source, missing)
    shared = [name for name in logged if name in profile.features]
    profile = ReferenceProfile({n: profile.features[n] for n in shared}, profile.n_rows, profile.source_rows,
                               profile.version)
    return Comparison(DriftWindow({n: data[n] for n in shared}, n_rows), profile, source)


@provides("prediction_comparison")
def prediction_comparison(ctx: InputContext) -> Comparison:
    """The window's `prediction` (and `score`) against the reference's or history's."""
    model = ctx.model
    assert model is not None, "prediction_comparison is a model input"
    settings = check_settings(ctx, PredictionDriftSettings)
    kinds: dict[str, Kind] = ({"prediction": "categorical", "score": "numeric"} if model.task == "classification"
                              else {"prediction": "numeric"})
    columns = {name: f"p.{name}" for name in kinds}
    query = (f"SELECT {_select(kinds, columns)} FROM {quote_ident(model.predictions_table)} p "
             "WHERE p.error IS NULL AND p.prediction IS NOT NULL AND p.ts >= ?")
    return _compare(ctx, settings, kinds, query, [], {name: name for name in kinds}, _reference_outputs,
                    "predictions")


@provides("label_comparison")
def label_comparison(ctx: InputContext) -> Comparison:
    """The labels known at `now` of the window's predictions against the reference's target or history's."""
    model = ctx.model
    assert model is not None, "label_comparison is a model input"
    settings = check_settings(ctx, LabelDriftSettings)
    kinds: dict[str, Kind] = {"label": "categorical" if model.task == "classification" else "numeric"}
    known, params = labels_known_at(model.name, ctx.now())
    query = (f"SELECT {_select(kinds, {'label': 'l.label'})} FROM {quote_ident(model.predictions_table)} p "
             f"JOIN {known} l USING (request_id) WHERE l.label IS NOT NULL AND p.ts >= ?")
    return _compare(ctx, settings, kinds, query, params, {"label": model.target}, _reference_labels,
                    "labelled predictions")


def _has_values(column: Any) -> bool:
    if column is None or len(column) == 0:
        return False
    values = np.ma.filled(np.ma.asarray(column).astype(float), np.nan) if np.ma.isMaskedArray(column) else column
    return bool(np.isfinite(np.asarray(values, dtype=float)).any())
