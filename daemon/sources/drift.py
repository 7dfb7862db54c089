"""Inputs of the drift check: the reference profile (built once per reference file and settings, then
cached) and the window of recent predictions, both read by DuckDB as whole columns."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from checks.drift import DriftSettings, DriftWindow, profile_from_reference
from checks.stats.profile import ReferenceProfile, kind_of_type
from daemon.ingest.schema import reference_reader
from daemon.inputs import InputContext, check_settings, provides
from daemon.sources.reference import ReferenceCache
from daemon.store.db import quote_ident

_profiles: ReferenceCache[ReferenceProfile] = ReferenceCache()


def _features(ctx: InputContext, settings: DriftSettings) -> list[str]:
    assert ctx.model is not None, "drift inputs are model inputs"
    return list(settings.features or ctx.model.features)


@provides("reference_profile")
def reference_profile(ctx: InputContext) -> ReferenceProfile | None:
    """None when the model has no reference; the cached profile while the file and settings are unchanged."""
    model = ctx.model
    assert model is not None
    if model.reference is None:
        return None
    settings = check_settings(ctx, DriftSettings)
    features = _features(ctx, settings)

    def build() -> ReferenceProfile:
        columns = ", ".join(quote_ident(f) for f in features)
        data = ctx.store.cursor().execute(f"SELECT {columns} FROM {reference_reader(model.reference)}").fetchnumpy()
        return profile_from_reference(data, {f: model.features[f] for f in features}, settings,
                                      version=f"{model.reference.name}@{model.reference.stat().st_mtime_ns}")

    depends = (settings.reference_max_rows, tuple(features), tuple(sorted(model.features.items())))
    return _profiles.get(model, depends, build)


@provides("drift_window")
def drift_window(ctx: InputContext) -> DriftWindow:
    """The predictions with ts in the last `window` (the newest `max_rows` when there are more): numeric
    features as numpy columns, categorical ones as {category: count} from a GROUP BY.

    Counting in DuckDB instead of fetching strings halves the read at 1M rows and saves ~250 MB of Python
    strings (bench/drift.py): the categorical statistics need only the counts. The newest-`max_rows` cut is
    a timestamp bound found once, so every column is read over the same rows without sorting the window.
    """
    model = ctx.model
    assert model is not None
    settings = check_settings(ctx, DriftSettings)
    features = [f for f in _features(ctx, settings) if f in model.features]
    table = quote_ident(model.predictions_table)
    now = ctx.now()
    cur = ctx.store.cursor()
    start = now - timedelta(seconds=float(settings.window))
    n_rows = cur.execute(f"SELECT count(*) FROM {table} WHERE ts >= ? AND ts <= ?", [start, now]).fetchone()[0]
    if n_rows > settings.max_rows:
        # the ts of the max_rows-th newest row; rows sharing it all come in (a few more than max_rows at most)
        start = cur.execute(f"SELECT ts FROM {table} WHERE ts >= ? AND ts <= ? ORDER BY ts DESC LIMIT 1 OFFSET ?",
                            [start, now, settings.max_rows - 1]).fetchone()[0]
        n_rows = cur.execute(f"SELECT count(*) FROM {table} WHERE ts >= ? AND ts <= ?", [start, now]).fetchone()[0]
    numeric = [f for f in features if kind_of_type(model.features[f]) == "numeric"]
    columns: dict[str, Any] = {}
    if numeric:
        columns = cur.execute(f"SELECT {', '.join(quote_ident(f) for f in numeric)} FROM {table} "
                              "WHERE ts >= ? AND ts <= ?", [start, now]).fetchnumpy()
    for feature in features:
        if feature not in numeric:
            col = quote_ident(feature)
            columns[feature] = dict(cur.execute(f"SELECT {col}, count(*) FROM {table} WHERE ts >= ? AND ts <= ? "
                                                f"GROUP BY {col}", [start, now]).fetchall())
    return DriftWindow(columns, int(n_rows))
