"""Inputs of the multivariate_drift check: the reference prepared once per reference file and settings (a
seeded sample, its encoding, PCA fitted on one half), and a seeded sample of the window's newest predictions.

Both sides are read with every feature cast to what the check treats it as (numbers DOUBLE, categories
VARCHAR), so a category stored as an integer in the reference and as text in the predictions still matches.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from checks.multivariate_drift import (
    MultivariateDriftSettings,
    MultivariateReference,
    MultivariateWindow,
    prepare_reference,
)
from checks.stats.profile import kind_of_type
from daemon.ingest.schema import reference_reader
from daemon.inputs import InputContext, check_settings, provides
from daemon.sources.reference import ReferenceCache
from daemon.store.db import quote_ident

_references: ReferenceCache[MultivariateReference] = ReferenceCache()
# A reference up to this many times reference_max_rows is read whole and sampled in numpy (the same rows on every
# build); a bigger one is sampled by DuckDB's reservoir, which bounds memory but may pick other rows after a
# restart (DuckDB repeats a seeded sample only single-threaded): the figures then move by sampling noise only.
_READ_WHOLE_FACTOR = 10


def _features(ctx: InputContext, settings: MultivariateDriftSettings) -> list[str]:
    assert ctx.model is not None, "multivariate_drift inputs are model inputs"
    return [f for f in (settings.features or ctx.model.features) if f in ctx.model.features]


def _select(ctx: InputContext, features: list[str]) -> str:
    """The features cast to what the check reads: DOUBLE for numbers, VARCHAR for categories."""
    assert ctx.model is not None
    kinds = {f: kind_of_type(ctx.model.features[f]) for f in features}
    return ", ".join(f"{quote_ident(f)}::{'DOUBLE' if kinds[f] == 'numeric' else 'VARCHAR'} AS {quote_ident(f)}"
                     for f in features)


@provides("multivariate_reference")
def multivariate_reference(ctx: InputContext) -> MultivariateReference | None:
    """None when the model has no reference; the cached preparation while the file and settings are unchanged."""
    model = ctx.model
    assert model is not None
    if model.reference is None:
        return None
    settings = check_settings(ctx, MultivariateDriftSettings)
    reference = model.reference

    def build() -> MultivariateReference:
        cur = ctx.store.cursor()
        reader = reference_reader(reference)
        present = {row[0] for row in cur.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()}
        features = [f for f in _features(ctx, settings) if f in present]
        if not features:
            return prepare_reference({}, {}, settings, version=reference.name)
        total = cur.execute(f"SELECT count(*) FROM {reader}").fetchone()[0]
        sample = ""
        if total > _READ_WHOLE_FACTOR * settings.reference_max_rows:
            sample = f" USING SAMPLE reservoir({int(settings.reference_max_rows)} ROWS) REPEATABLE ({settings.seed})"
        data = cur.execute(f"SELECT {_select(ctx, features)} FROM {reader}{sample}").fetchnumpy()
        kinds = {f: model.features[f] for f in features}
        return prepare_reference(data, kinds, settings, version=f"{reference.name}@{reference.stat().st_mtime_ns}")

    depends = (tuple(settings.features), settings.reference_max_rows, settings.max_categories, settings.pca_variance,
               settings.seed, tuple(sorted(model.features.items())))
    return _references.get(model, depends, build)


@provides("multivariate_window")
def multivariate_window(ctx: InputContext) -> MultivariateWindow:
    """A seeded sample of `sample_size` rows of the newest `max_rows` predictions with ts in the last `window`,
    and how many rows that window held (at most max_rows)."""
    model = ctx.model
    assert model is not None
    settings = check_settings(ctx, MultivariateDriftSettings)
    features = _features(ctx, settings)
    now = ctx.now()
    bounds = [now - timedelta(seconds=float(settings.window)), now]
    table = quote_ident(model.predictions_table)
    cur = ctx.store.cursor()
    n_rows = cur.execute(f"SELECT count(*) FROM {table} WHERE ts >= ? AND ts <= ?", bounds).fetchone()[0]
    if not features:
        return MultivariateWindow({}, min(n_rows, settings.max_rows))
    data: dict[str, Any] = cur.execute(
        f"""SELECT * FROM (SELECT {_select(ctx, features)} FROM {table}
                           WHERE ts >= ? AND ts <= ? ORDER BY ts DESC LIMIT ?)
            USING SAMPLE reservoir({int(settings.sample_size)} ROWS) REPEATABLE ({settings.seed})""",
        [*bounds, settings.max_rows],
    ).fetchnumpy()
    return MultivariateWindow(data, min(n_rows, settings.max_rows))
