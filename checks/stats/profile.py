"""The reference profile: what drift needs from the training data, computed once per model version.

Every drift run compares a window with the same reference, so everything about the reference that does
not depend on the window is computed here, once, and the daemon keeps the object for as long as the model
version is active:

- numeric features: the finite values sorted (KS and Wasserstein then cost one `searchsorted` of the
  window into them instead of a sort of both sides), prefix sums of the centred sorted values (they turn
  the Wasserstein integral over the reference's steps into O(1) per window value), mean and standard
  deviation, and the PSI/JS bins: edges at the reference's deciles and the reference's share in each bin;
- categorical features: the categories with their counts and a dict from category to column, so a window
  is encoded by one pass of `collections.Counter` plus a dict lookup per distinct value.

Memory: 16 bytes per reference row per numeric feature (sorted values + prefix sums), so `max_rows`
(default 250 000: 4 MB per numeric feature) caps it by a seeded uniform sample of rows. A 250k-row sample
moves the reference ECDF by about 1/sqrt(250k) = 0.002, a twentieth of the smallest effect the check
flags, and the sample is the same on every build, so restarts do not change verdicts.

Missing values (None, NaN, and +-inf for numeric features) are left out on both sides: how many values
are missing is the data-quality check's question, not drift's.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Kind = Literal["numeric", "categorical"]

# PSI/JS bins for numeric features: the reference's deciles. Ten bins is the customary PSI layout; more bins
# add sampling noise (E[PSI] under no drift grows with bins/n) without making a shift easier to see.
DEFAULT_BINS = 10
# Categories rarer than this in the reference are pooled into one column, so every column of the chi-squared
# table has an expected count of at least 5 in a 1000-row window (0.005 * 1000); chi-squared p-values are
# unreliable below that. A rare category that grows still shows: the pooled column grows with it.
DEFAULT_RARE_SHARE = 0.005
DEFAULT_MAX_ROWS = 250_000
RARE = "(rare)"  # display name of the pooled rare column
# Config / DuckDB feature types -> kind: numbers are numeric, strings and booleans are categories.
KIND_BY_TYPE: Mapping[str, Kind] = {
    "double": "numeric", "float": "numeric", "real": "numeric", "int": "numeric", "integer": "numeric",
    "bigint": "numeric", "smallint": "numeric", "tinyint": "numeric", "decimal": "numeric",
    "string": "categorical", "varchar": "categorical", "text": "categorical", "category": "categorical",
    "bool": "categorical",
    "boolean": "categorical",
}


@dataclass(frozen=True, eq=False)
class NumericReference:
    """One numeric feature of the reference (finite values only)."""

    name: str
    sorted_values: np.ndarray  # float64, ascending
    prefix_sums: np.ndarray  # float64, len n + 1: prefix_sums[c] = sum(sorted_values[:c] - center)
    center: float  # median, subtracted before summing so prefix sums stay small (precision)
    mean: float
    std: float  # population standard deviation; Wasserstein is divided by it (by 1 when it is 0)
    edges: np.ndarray  # interior bin edges, ascending and unique; bins are (-inf, e0], (e0, e1], ..., (ek, inf)
    bin_shares: np.ndarray  # the reference's share in each bin, len(edges) + 1
    missing: int  # rows left out (None, NaN, inf)

    kind: Kind = field(default="numeric", init=False)

    @property
    def n(self) -> int:
        return int(self.sorted_values.size)

    @property
    def spread(self) -> float:
        """What Wasserstein is normalised by: the standard deviation, or 1 (raw units) for a constant feature."""
        return self.std if self.std > 0 else 1.0

    @property
    def nbytes(self) -> int:
        return int(self.sorted_values.nbytes + self.prefix_sums.nbytes + self.edges.nbytes + self.bin_shares.nbytes)


@dataclass(frozen=True, eq=False)
class CategoricalReference:
    """One categorical feature of the reference: its columns (kept categories, then the pooled rare ones)."""

    name: str
    columns: tuple[Any, ...]  # column labels: the kept categories, most frequent first, then RARE if any
    codes: Mapping[Any, int]  # every reference category -> its column (rare ones -> the RARE column)
    counts: np.ndarray  # int64 reference count per column
    rare_categories: int  # how many categories were pooled into RARE
    missing: int

    kind: Kind = field(default="categorical", init=False)

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    @property
    def shares(self) -> np.ndarray:
        return self.counts / max(self.n, 1)

    @property
    def nbytes(self) -> int:
        return int(self.counts.nbytes + 100 * len(self.codes))  # ~100 bytes per dict entry and its key


FeatureReference = NumericReference | CategoricalReference


@dataclass(frozen=True, eq=False)
class ReferenceProfile:
    """Everything drift needs from the reference data, keyed by feature name. Build it with `build`."""

    features: Mapping[str, FeatureReference]
    n_rows: int  # rows the profile was built from (after the max_rows sample)
    source_rows: int  # rows the reference data had
    version: str | None = None  # the model version it belongs to: the daemon's cache key

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.features)

    @property
    def nbytes(self) -> int:
        return sum(f.nbytes for f in self.features.values())

    @classmethod
    def build(
        cls,
        columns: Mapping[str, Any],
        kinds: Mapping[str, Kind] | None = None,
        *,
        bins: int = DEFAULT_BINS,
        rare_share: float = DEFAULT_RARE_SHARE,
        max_rows: int | None = DEFAULT_MAX_ROWS,
        seed: int = 0,
        version: str | None = None,
    ) -> ReferenceProfile:
        """Profile the reference columns (equal-length arrays, lists or Arrow arrays).

        `kinds` names each feature's kind; features not in it are numeric when their numpy dtype is a number
        (not bool), else categorical. See `kind_of_type` for config type names.
        """
        arrays = {name: _as_numpy(values) for name, values in columns.items()}
        lengths = {a.shape[0] for a in arrays.values()}
        if len(lengths) > 1:
            raise ValueError(f"reference columns differ in length: {sorted(lengths)}")
        source_rows = lengths.pop() if lengths else 0
        rows = None
        if max_rows is not None and source_rows > max_rows:
            rows = np.sort(np.random.default_rng(seed).choice(source_rows, size=max_rows, replace=False))
        features: dict[str, FeatureReference] = {}
        for name, values in arrays.items():
            if rows is not None:
                values = values[rows]
            kind = (kinds or {}).get(name) or _infer_kind(values)
            if kind == "numeric":
                features[name] = numeric_reference(name, values, bins)
            elif kind == "categorical":
                features[name] = categorical_reference(name, values, rare_share)
            else:
                raise ValueError(f"feature {name!r}: kind must be 'numeric' or 'categorical', not {kind!r}")
        n_rows = source_rows if rows is None else int(rows.size)
        return cls(features, n_rows, source_rows, version)


def kind_of_type(type_name: str) -> Kind:
    """The drift kind of a feature declared in config as `type_name` ("double", "int", "string", "bool"...)."""
    try:
        return KIND_BY_TYPE[type_name.strip().lower()]
    except KeyError:
        raise ValueError(f"no drift kind for feature type {type_name!r}; known: {', '.join(KIND_BY_TYPE)}") from None


def numeric_reference(name: str, values: Any, bins: int = DEFAULT_BINS) -> NumericReference:
    """Sort the finite values once; precompute prefix sums, moments and decile bins."""
    x = finite_float(values)
    missing = len(values) - x.size
    x = np.sort(x)
    n = x.size
    if n == 0:
        empty = np.empty(0)
        return NumericReference(name, x, np.zeros(1), 0.0, math.nan, math.nan, empty, np.ones(1), missing)
    center = float(x[(n - 1) // 2])
    prefix = np.empty(n + 1)
    prefix[0] = 0.0
    np.cumsum(x - center, out=prefix[1:])
    mean = float(x.mean())
    std = float(x.std())
    edges = quantile_edges(x, bins)
    cumulative = np.searchsorted(x, edges, side="right")
    counts = np.diff(np.concatenate(([0], cumulative, [n])))
    return NumericReference(name, x, prefix, center, mean, std, edges, counts / n, missing)


def quantile_edges(sorted_values: np.ndarray, bins: int) -> np.ndarray:
    """Interior edges at the 1/bins ... (bins-1)/bins quantiles, as data values ("inverted cdf"), deduplicated.

    Data values rather than interpolated ones keep a discrete feature's bins on its values (a 0/1 feature
    gets the bins (-inf, 0], (0, 1], (1, inf)); duplicates collapse where a value holds more than one decile.
    """
    n = sorted_values.size
    if n == 0 or bins < 2:
        return np.empty(0)
    ranks = np.ceil(np.arange(1, bins) * n / bins).astype(np.int64) - 1
    return np.unique(sorted_values[np.clip(ranks, 0, n - 1)])


def categorical_reference(name: str, values: Any, rare_share: float = DEFAULT_RARE_SHARE) -> CategoricalReference:
    """Count the categories; pool those rarer than `rare_share` into one column."""
    counts, missing = category_counts(values)
    n = sum(counts.values())
    ordered = sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))
    kept = [(cat, c) for cat, c in ordered if n and c / n >= rare_share]
    rare = [(cat, c) for cat, c in ordered if not (n and c / n >= rare_share)]
    codes: dict[Any, int] = {cat: i for i, (cat, _) in enumerate(kept)}
    columns: list[Any] = [cat for cat, _ in kept]
    column_counts = [c for _, c in kept]
    if rare:
        codes.update({cat: len(kept) for cat, _ in rare})
        columns.append(RARE)
        column_counts.append(sum(c for _, c in rare))
    return CategoricalReference(name, tuple(columns), codes, np.asarray(column_counts, dtype=np.int64), len(rare),
                                missing)


# -- input normalisation (shared with the window side) ---------------------------------------------------

def finite_float(values: Any) -> np.ndarray:
    """A float64 array of the finite values (None, NaN, +-inf and masked entries dropped)."""
    if _is_arrow(values):
        values = values.to_numpy(zero_copy_only=False)
    if isinstance(values, np.ma.MaskedArray):
        values = values.astype(np.float64).filled(np.nan)
    x = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(x)
    return x if finite.all() else x[finite]


def category_counts(values: Any) -> tuple[dict[Any, int], int]:
    """({category: count}, missing) for an array/list of categories, an Arrow array or a {category: count} map.

    Counting uses `collections.Counter` on a Python list (one C loop, no sort of strings) or Arrow's
    `value_counts`; None and NaN are missing.
    """
    if isinstance(values, Mapping):
        raw: Mapping[Any, int] = values
    elif _is_arrow(values):
        import pyarrow.compute as pc  # only when the caller already works in Arrow

        pairs = pc.value_counts(values).to_pylist()
        raw = {p["values"]: int(p["counts"]) for p in pairs}
    else:
        values = masked_as_none(values)
        items = values.tolist() if isinstance(values, np.ndarray) else list(values)
        raw = Counter(items)
    counts: dict[Any, int] = {}
    missing = 0
    for cat, c in raw.items():
        if _is_missing(cat):
            missing += int(c)
        else:
            counts[cat] = counts.get(cat, 0) + int(c)
    return counts, missing


def masked_as_none(values: Any) -> Any:
    """A masked array (DuckDB's fetchnumpy for a column with NULLs) as an object array with None where masked;
    anything else unchanged. Not `.filled(None)`: None there means "the default fill value", '?' for strings."""
    if isinstance(values, np.ma.MaskedArray):
        return np.where(np.ma.getmaskarray(values), None, np.asarray(values.data, dtype=object))
    return values


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _is_arrow(values: Any) -> bool:
    return type(values).__module__.startswith("pyarrow")


def _as_numpy(values: Any) -> np.ndarray:
    """Reference columns become numpy arrays once (build time), so rows can be sampled alike in all of them."""
    if _is_arrow(values):
        return np.asarray(values.to_numpy(zero_copy_only=False))
    return values if isinstance(values, np.ndarray) else np.asarray(values)


def _infer_kind(values: np.ndarray) -> Kind:
    """Numbers (not booleans) are numeric; an object array is numeric only when every value is a number or None."""
    if values.dtype.kind in "iuf":
        return "numeric"
    if values.dtype.kind == "O":
        numbers = all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in values.tolist())
        return "numeric" if numbers and values.size else "categorical"
    return "categorical"
