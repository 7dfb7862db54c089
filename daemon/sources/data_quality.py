"""Input of the data_quality check: one window of a model's predictions counted in DuckDB against the
reference's null shares, ranges and categories (read once per reference file, then cached)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from checks.data_quality import DataQualitySettings
from daemon.ingest.schema import reference_reader
from daemon.inputs import InputContext, check_settings, provides
from daemon.sources.reference import ReferenceCache
from daemon.store.db import quote_ident

CATEGORY_CAP = 10_000  # a "categorical" feature with more distinct values is an id: not judged for unseen

_stats: ReferenceCache[dict[str, dict[str, Any]]] = ReferenceCache()


def reference_stats(ctx: InputContext) -> dict[str, dict[str, Any]]:
    """Per feature: null share, and min/max (numeric) or the set of categories; {} without a reference."""
    model = ctx.model
    assert model is not None
    if model.reference is None:
        return {}
    return _stats.get(model, tuple(sorted(model.features.items())), lambda: _reference_stats(ctx))


def _reference_stats(ctx: InputContext) -> dict[str, dict[str, Any]]:
    model = ctx.model
    assert model is not None and model.reference is not None
    cur = ctx.store.cursor()
    reader = reference_reader(model.reference)
    columns = {r[0] for r in cur.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()}
    stats: dict[str, dict[str, Any]] = {}
    for feature, kind in model.features.items():
        if feature not in columns:
            continue
        col = quote_ident(feature)
        if kind in ("DOUBLE", "BIGINT"):
            nulls, lo, hi = cur.execute(
                f"SELECT avg(({col} IS NULL)::INT), min({col}), max({col}) FROM {reader}").fetchone()
            stats[feature] = {"kind": "numeric", "null_share": nulls or 0.0, "min": lo, "max": hi}
        else:
            nulls = cur.execute(f"SELECT avg(({col} IS NULL)::INT) FROM {reader}").fetchone()[0]
            values = [r[0] for r in cur.execute(
                f"SELECT DISTINCT {col}::VARCHAR FROM {reader} WHERE {col} IS NOT NULL LIMIT {CATEGORY_CAP + 1}"
            ).fetchall()]
            stats[feature] = {"kind": "categorical", "null_share": nulls or 0.0,
                              "categories": values if len(values) <= CATEGORY_CAP else None}
    return stats


@provides("quality_window")
def quality_window(ctx: InputContext) -> dict[str, Any]:
    model = ctx.model
    assert model is not None
    settings = check_settings(ctx, DataQualitySettings)
    reference = reference_stats(ctx)
    now = ctx.now()
    start = now - timedelta(seconds=float(settings.window))
    table = quote_ident(model.predictions_table)
    selects, params = ["count(*)"], []
    judged = []
    for feature in model.features:
        ref = reference.get(feature, {"kind": "numeric" if model.features[feature] in ("DOUBLE", "BIGINT")
                                      else "categorical", "null_share": 0.0})
        col = quote_ident(feature)
        selects.append(f"count(*) FILTER ({col} IS NULL)")
        if ref["kind"] == "numeric" and ref.get("min") is not None:
            selects.append(f"count(*) FILTER ({col} < ? OR {col} > ?)")
            params += [ref["min"], ref["max"]]
        elif ref["kind"] == "categorical" and ref.get("categories") is not None:
            selects.append(f"count(*) FILTER ({col} IS NOT NULL AND NOT list_contains(?, {col}::VARCHAR))")
            params.append(ref["categories"])
        else:
            selects.append("0")
        judged.append((feature, ref))
    cur = ctx.store.cursor()
    counts = cur.execute(f"SELECT {', '.join(selects)} FROM {table} WHERE ts >= ? AND ts <= ?",
                         [*params, start, now]).fetchone()
    features = {
        feature: {"kind": ref["kind"], "nulls": counts[1 + 2 * i], "outside": counts[2 + 2 * i],
                  "reference_null_share": ref["null_share"]}
        for i, (feature, ref) in enumerate(judged)
    }
    quarantined = cur.execute(
        "SELECT count(*) FROM quarantine WHERE model = ? AND source = 'predictions' AND ts >= ? AND ts <= ? "
        "AND line IS NOT NULL", [model.name, start, now]).fetchone()[0]
    window_s = float(settings.window)
    oldest = now - timedelta(seconds=(settings.volume_history + 1) * window_s)
    per_window = dict(cur.execute(
        f"""SELECT floor(epoch(?::TIMESTAMP - ts) / ?)::INT AS k, count(*) FROM {table}
            WHERE ts >= ? AND ts < ? GROUP BY k""", [now, window_s, oldest, start]).fetchall())
    first = cur.execute(f"SELECT min(ts) FROM {table} WHERE ts <= ?", [now]).fetchone()[0]
    # windows before the model's first row are not "no traffic": they are left out of its normal
    history = [per_window.get(k, 0) for k in range(1, settings.volume_history + 1)
               if first is not None and now - timedelta(seconds=(k + 1) * window_s) >= first]
    return {"rows": counts[0], "quarantined": quarantined, "features": features, "history": history}
