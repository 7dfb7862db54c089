"""Inputs of the drift check: the reference profile (built once per reference file and settings, then
cached) and the window of recent predictions, both read by DuckDB as whole columns."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from checks.drift import DriftSettings, DriftWindow, profile_from_reference
from checks.stats.profile import ReferenceProfile
from daemon.ingest.schema import reference_reader
from daemon.inputs import InputContext, provides
from daemon.store.db import quote_ident, utcnow

_cache: dict[str, tuple[tuple, ReferenceProfile]] = {}
_cache_lock = threading.Lock()


def _settings(ctx: InputContext) -> DriftSettings:
    if ctx.check is not None and isinstance(ctx.check.settings, DriftSettings):
        return ctx.check.settings
    return DriftSettings()


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
    settings = _settings(ctx)
    try:
        st = model.reference.stat()
    except FileNotFoundError:
        raise FileNotFoundError(f"reference file {model.reference} does not exist") from None
    features = _features(ctx, settings)
    key = (str(model.reference), st.st_ino, st.st_size, st.st_mtime_ns, settings.reference_max_rows,
           tuple(features), tuple(sorted(model.features.items())))
    with _cache_lock:
        cached = _cache.get(model.name)
        if cached is not None and cached[0] == key:
            return cached[1]
    columns = ", ".join(quote_ident(f) for f in features)
    data = ctx.store.cursor().execute(f"SELECT {columns} FROM {reference_reader(model.reference)}").fetchnumpy()
    profile = profile_from_reference(data, {f: model.features[f] for f in features}, settings,
                                     version=f"{model.reference.name}@{st.st_mtime_ns}")
    with _cache_lock:
        _cache[model.name] = (key, profile)
    return profile


@provides("drift_window")
def drift_window(ctx: InputContext) -> DriftWindow:
    """The newest `max_rows` predictions with ts in the last `window`, as numpy columns."""
    model = ctx.model
    assert model is not None
    settings = _settings(ctx)
    features = [f for f in _features(ctx, settings) if f in model.features]
    columns = ", ".join(quote_ident(f) for f in features)
    data: dict[str, Any] = ctx.store.cursor().execute(
        f"""SELECT {columns} FROM {quote_ident(model.predictions_table)}
            WHERE ts >= ? ORDER BY ts DESC LIMIT ?""",
        [utcnow() - timedelta(seconds=float(settings.window)), settings.max_rows],
    ).fetchnumpy()
    n_rows = len(next(iter(data.values()))) if data else 0
    return DriftWindow(data, n_rows)
