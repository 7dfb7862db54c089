"""Inputs of the drift check: the reference profile (built once per reference file and settings, then
cached) and the window of recent predictions, both read by DuckDB as whole columns."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from checks.drift import DriftSettings, DriftWindow, profile_from_reference
from checks.stats.profile import ReferenceProfile
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
    """The newest `max_rows` predictions with ts in the last `window`, as numpy columns."""
    model = ctx.model
    assert model is not None
    settings = check_settings(ctx, DriftSettings)
    features = [f for f in _features(ctx, settings) if f in model.features]
    columns = ", ".join(quote_ident(f) for f in features)
    data: dict[str, Any] = ctx.store.cursor().execute(
        f"""SELECT {columns} FROM {quote_ident(model.predictions_table)}
            WHERE ts >= ? AND ts <= ? ORDER BY ts DESC LIMIT ?""",
        [ctx.now() - timedelta(seconds=float(settings.window)), ctx.now(), settings.max_rows],
    ).fetchnumpy()
    n_rows = len(next(iter(data.values()))) if data else 0
    return DriftWindow(data, n_rows)
