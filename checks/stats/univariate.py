"""Univariate two-sample statistics of a window against a reference profile, vectorised with numpy.

Each statistic is the textbook one and is tested against scipy on fixed data (tests/checks/test_drift_stats.py):

- KS statistic: sup |F_ref - F_win| over the data, equal to `scipy.stats.ks_2samp`'s to the last bit (same
  integer counts, same float divisions). The p-value is ks_2samp's two-sided "asymp" one,
  `kstwo.sf(d, round(n1 n2 / (n1 + n2)))`, at every size: ks_2samp's "exact" mode (its default up to 10 000
  values per side) costs O(n1 n2) and differs from asymp by little at the sizes drift judges (>= min_rows).
  One exception, for speed: above an effective size of 10 000 and below p = 0.025, kstwo sums the exact
  one-sided Smirnov series (0.8 s per feature at 1M rows a side), and ks_pvalue uses its asymptotic
  expansion instead (within 1e-3 for p >= 1e-4). Ties make the test conservative, never liberal.
- Wasserstein-1: the integral of |F_ref - F_win|, equal to `scipy.stats.wasserstein_distance` (to ~1e-12
  relative), then divided by the reference's standard deviation, so 0.25 means "as far as a shift of a
  quarter of a standard deviation".
- PSI: sum((w - r) ln(w / r)) over the reference's bins, with shares floored at 1e-4 (the customary
  floor: an empty bin would make it infinite, and the floor keeps it independent of the window size).
- Jensen-Shannon distance: `scipy.spatial.distance.jensenshannon(r, w, base=2)` over the same bins, so it
  lies in [0, 1].
- chi-squared test of homogeneity on the 2 x k table (reference row, window row), equal to
  `scipy.stats.chi2_contingency(table, correction=False)`: Yates' correction exists for 2 x 2 tables with
  small counts; with it, a two-category feature would be tested differently from a three-category one.

How KS and Wasserstein avoid sorting the reference on every run: the reference is sorted once (profile.py)
with prefix sums of its centred values. The window is sorted (O(n log n) in numpy's SIMD sort) and its
distinct values u_0 < ... < u_{m-1} are searched in the reference: O(m log n_ref). Between two window values
the window ECDF G is a constant g, so on each such interval [a, b)

    sup (F - g) = F(b-) - g,   sup (g - F) = g - F(a),
    integral |F - g| = g (x* - a) - (H(x*) - H(a)) + (H(b) - H(x*)) - g (b - x*),

where x* (clipped to [a, b]) is where F reaches g, i.e. the ceil(g n_ref)-th reference value, and
H(x) = integral of F up to x = (count(x) x - prefix_sum[count(x)]) / n_ref. So a run costs O(m log n_ref)
whatever the reference's size: a 5 000-row window against a 1M-row reference touches 5 000 positions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from checks.stats.profile import RARE, CategoricalReference, NumericReference, category_counts, finite_float

PSI_FLOOR = 1e-4  # shares below this count as this in PSI (see module docstring)
SMIRNOV_SUM_MAX_N = 10_000  # above this effective size, ks_pvalue's tail uses the asymptotic expansion
CHUNK = 1 << 14  # window values per block in ecdf_distances: 16k * 8 bytes per temporary stays in L2


# -- numeric ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class NumericComparison:
    """A numeric feature's window against its reference."""

    n_ref: int
    n: int  # finite window values
    missing: int
    ks_statistic: float
    ks_pvalue: float
    wasserstein: float  # raw units
    wasserstein_normalized: float  # divided by the reference's spread
    psi: float
    js_distance: float
    window_mean: float
    ref_mean: float


def compare_numeric(ref: NumericReference, values: Any) -> NumericComparison:
    """All numeric statistics of one window column against its reference (the window is sorted once)."""
    x = finite_float(values)
    missing = len(values) - x.size
    window = np.sort(x)
    n = window.size
    if n == 0 or ref.n == 0:
        nan = math.nan
        return NumericComparison(ref.n, n, missing, nan, nan, nan, nan, nan, nan, nan, ref.mean)
    d, w1 = ecdf_distances(ref.sorted_values, ref.prefix_sums, ref.center, window)
    win_shares = bin_counts(window, ref.edges) / n
    return NumericComparison(
        n_ref=ref.n, n=n, missing=missing,
        ks_statistic=d, ks_pvalue=ks_pvalue(d, ref.n, n),
        wasserstein=w1, wasserstein_normalized=w1 / ref.spread,
        psi=psi(ref.bin_shares, win_shares), js_distance=js_distance(ref.bin_shares, win_shares),
        window_mean=float(window.mean()), ref_mean=ref.mean,
    )


def ecdf_distances(ref: np.ndarray, prefix: np.ndarray, center: float, window: np.ndarray,
                   chunk: int = CHUNK) -> tuple[float, float]:
    """(KS statistic, Wasserstein-1) between sorted `ref` (with its centred prefix sums) and sorted `window`.

    See the module docstring for the derivation; both are exact up to float rounding, ties included. The
    window's distinct values are processed in blocks of `chunk` so that the dozen temporaries stay in cache.
    """
    n1, n2 = ref.size, window.size
    # distinct window values u and q = how many window values are <= each
    if n2 > 1:
        last = np.flatnonzero(window[1:] != window[:-1])
        if last.size == n2 - 1:  # no ties: the common case for continuous features, skip the gathers
            u, q = window, np.arange(1, n2 + 1, dtype=np.int64)
        else:
            idx = np.append(last, n2 - 1)
            u, q = window[idx], idx + 1
    else:
        u, q = window, np.ones(1, dtype=np.int64)
    m = u.size
    hi_ref = ref[-1] - center
    ks = 0.0
    area = 0.0  # n1 * the integral of |F - G|
    h_prev = 0.0  # n1 * H at the previous block's last u
    for start in range(0, m, chunk):
        stop = min(start + chunk, m)
        uu, qq = u[start:stop], q[start:stop]
        # reference values <= u, searched only in the slice of the reference this block spans (cache-resident)
        lo = int(np.searchsorted(ref, uu[0], side="left"))
        hi = int(np.searchsorted(ref, uu[-1], side="right"))
        right = np.searchsorted(ref[lo:hi], uu, side="right")
        right += lo
        # reference values < u: differs from `right` only where u is itself a reference value
        on_ref = ref[np.maximum(right - 1, 0)] == uu
        on_ref &= right > 0
        if on_ref.any():
            left = right.copy()
            left[on_ref] = np.searchsorted(ref, uu[on_ref], side="left")
        else:
            left = right
        # KS: the same divisions and subtractions as ks_2samp, so the statistic matches it bit for bit.
        g = qq / n2
        ks = max(ks, float(np.max(g - right / n1)))  # window ECDF above the reference's, at each u
        f_left = left / n1  # reference ECDF just below each u, against the window's on the interval before
        f_left[1:] -= g[:-1]
        f_left[0] -= (q[start - 1] / n2) if start else 0.0
        ks = max(ks, float(np.max(f_left)))
        # Wasserstein over the intervals [u_{t-1}, u_t) that end in this block (G = q_{t-1} / n2 on each)
        uc = uu - center
        h_u = right * uc - prefix[right]  # n1 * H(u)
        if start == 0:
            area += h_u[0]  # (-inf, u_0): G = 0, the integral of F
            a, b, h_a, h_b, q_a = uc[:-1], uc[1:], h_u[:-1], h_u[1:], qq[:-1]
        else:
            a = np.concatenate(([u[start - 1] - center], uc[:-1]))
            h_a = np.concatenate(([h_prev], h_u[:-1]))
            b, h_b, q_a = uc, h_u, q[start - 1:stop - 1]
        h_prev = float(h_u[-1])
        if a.size:
            area += _interval_areas(ref, prefix, center, a, b, h_a, h_b, q_a, n1, n2)
    # [u_{m-1}, inf): G = 1, the integral of 1 - F up to the largest reference value
    uc_last = u[-1] - center
    if uc_last < hi_ref:
        area += n1 * (hi_ref - uc_last) - ((n1 * hi_ref - prefix[n1]) - h_prev)
    return ks, float(area / n1)


def _interval_areas(ref: np.ndarray, prefix: np.ndarray, center: float, a: np.ndarray, b: np.ndarray,
                    h_a: np.ndarray, h_b: np.ndarray, q: np.ndarray, n1: int, n2: int) -> float:
    """n1 * sum over intervals [a, b) of the integral of |F - g|, g = q / n2, F the reference ECDF."""
    need = (q * n1 + n2 - 1) // n2  # F >= g exactly from the need-th reference value on (integer arithmetic)
    cross = ref[need - 1] - center
    h_cross = need * cross - prefix[need]
    x_star = np.minimum(np.maximum(cross, a), b)
    h_star = np.where(cross <= a, h_a, np.where(cross >= b, h_b, h_cross))
    # g (x* - a) - (H(x*) - H(a)) + (H(b) - H(x*)) - g (b - x*), all times n1
    g_n1 = q * (n1 / n2)
    return float(np.sum(g_n1 * ((x_star - a) - (b - x_star)) + ((h_a - h_star) + (h_b - h_star))))


def ks_pvalue(d: float, n1: int, n2: int) -> float:
    """Two-sided KS p-value as `scipy.stats.ks_2samp(..., method="asymp")` computes it: `kstwo.sf(d, en)`.

    Identical to it except for p < 0.025 at an effective size en = n1 n2 / (n1 + n2) above 10 000, where
    scipy's exact sum is too slow for a monitor (see below) and the asymptotic expansion replaces it.
    """
    if not (n1 and n2) or math.isnan(d):
        return math.nan
    from scipy.stats import kstwo  # lazy: scipy.stats takes ~1 s to import and the CLI imports checks

    m, n = sorted([float(n1), float(n2)], reverse=True)
    en = float(np.round(m * n / (m + n)))
    if en < 1:  # one value a side: no distribution to speak of (scipy returns NaN too, with a warning)
        return math.nan
    if en > SMIRNOV_SUM_MAX_N and en * d * d >= 2.2:
        # scipy's tail here is 2 * smirnov(en, d), an exact sum costing ~1.6 us * en (0.8 s at en = 500 000,
        # and a 1M-row window against a 1M-row reference has en = 500 000). Its asymptotic expansion,
        # 2 exp(-2 en d^2) (1 - 2d/3), is within 1e-3 of it for p >= 1e-4 and 2% for p >= 1e-17 when
        # en > 10 000; scipy itself returns 0 from en d^2 >= 370 on.
        if en * d * d >= 370.0:
            return 0.0
        return float(min(1.0, 2.0 * math.exp(-2.0 * en * d * d) * (1.0 - 2.0 * d / 3.0)))
    return float(np.clip(kstwo.sf(d, en), 0.0, 1.0))


def bin_counts(sorted_values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts in the bins (-inf, e0], (e0, e1], ..., (ek, inf) of already sorted values."""
    cumulative = np.searchsorted(sorted_values, edges, side="right")
    return np.diff(np.concatenate(([0], cumulative, [sorted_values.size])))


# -- categorical ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CategoricalComparison:
    """A categorical feature's window against its reference, on the columns kept categories + rare + unseen."""

    n_ref: int
    n: int  # non-missing window values
    missing: int
    columns: tuple[Any, ...]  # column labels; the last is UNSEEN when the window has categories the reference lacks
    ref_counts: np.ndarray
    window_counts: np.ndarray
    chi2_statistic: float
    chi2_dof: int
    chi2_pvalue: float
    psi: float
    js_distance: float
    unseen_share: float
    unseen: tuple[tuple[Any, int], ...]  # the window's unseen categories with their counts, largest first

    def largest_share_change(self) -> tuple[Any, float, float]:
        """(column, reference share, window share) of the column whose share moved most."""
        r = self.ref_counts / max(self.n_ref, 1)
        w = self.window_counts / max(self.n, 1)
        i = int(np.argmax(np.abs(w - r)))
        return self.columns[i], float(r[i]), float(w[i])


class _Unseen(str):
    """The column of categories the reference never had (a str subclass so it prints as a label)."""


UNSEEN = _Unseen("(unseen)")


def compare_categorical(ref: CategoricalReference, values: Any, n_rows: int | None = None) -> CategoricalComparison:
    """All categorical statistics of one window column (values, Arrow array or {category: count})."""
    counts, missing = category_counts(values)
    if n_rows is not None and isinstance(values, Mapping):
        missing = max(missing, n_rows - sum(counts.values()))
    window_counts = np.zeros(len(ref.columns), dtype=np.int64)
    unseen: dict[Any, int] = {}
    for cat, c in counts.items():
        code = ref.codes.get(cat)
        if code is None:
            unseen[cat] = c
        else:
            window_counts[code] += c
    columns = ref.columns
    ref_counts = ref.counts
    if unseen:
        columns = (*columns, UNSEEN)
        ref_counts = np.append(ref_counts, 0)
        window_counts = np.append(window_counts, sum(unseen.values()))
    n = int(window_counts.sum())
    ranked = tuple(sorted(unseen.items(), key=lambda item: (-item[1], str(item[0]))))
    if n == 0 or ref.n == 0:
        nan = math.nan
        return CategoricalComparison(ref.n, n, missing, columns, ref_counts, window_counts, nan, 0, nan, nan, nan,
                                     nan, ranked)
    stat, dof = chi2_homogeneity(ref_counts, window_counts)
    r, w = ref_counts / ref.n, window_counts / n
    return CategoricalComparison(
        n_ref=ref.n, n=n, missing=missing, columns=columns, ref_counts=ref_counts, window_counts=window_counts,
        chi2_statistic=stat, chi2_dof=dof, chi2_pvalue=chi2_pvalue(stat, dof),
        psi=psi(r, w), js_distance=js_distance(r, w),
        unseen_share=(sum(unseen.values()) / n) if unseen else 0.0, unseen=ranked,
    )


def chi2_homogeneity(ref_counts: np.ndarray, window_counts: np.ndarray) -> tuple[float, int]:
    """Pearson's chi-squared statistic and degrees of freedom of the 2 x k table, columns with counts only."""
    table = np.vstack([ref_counts, window_counts]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    k = table.shape[1]
    if k < 2:
        return 0.0, 0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    return float(np.sum((table - expected) ** 2 / expected)), k - 1


def chi2_pvalue(stat: float, dof: int) -> float:
    if dof == 0:
        return 1.0
    from scipy.special import chdtrc  # what scipy.stats.chi2.sf calls; lazy for the same reason as kstwo

    return float(chdtrc(dof, stat))


# -- binned distances, shared -------------------------------------------------------------------------------

def psi(ref_shares: np.ndarray, window_shares: np.ndarray, floor: float = PSI_FLOOR) -> float:
    """Population stability index with shares floored at `floor`."""
    r = np.maximum(ref_shares, floor)
    w = np.maximum(window_shares, floor)
    return float(np.sum((w - r) * np.log(w / r)))


def js_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon distance in bits (0..1), as scipy.spatial.distance.jensenshannon(p, q, base=2)."""
    p = p / np.sum(p)
    q = q / np.sum(q)
    m = (p + q) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log(p / m), 0.0)
        kl_q = np.where(q > 0, q * np.log(q / m), 0.0)
    js = (np.sum(kl_p) + np.sum(kl_q)) / math.log(2.0)
    return math.sqrt(max(js / 2.0, 0.0))


# -- multiple testing ------------------------------------------------------------------------------------

def benjamini_hochberg(pvalues: np.ndarray) -> np.ndarray:
    """BH-adjusted p-values (as scipy.stats.false_discovery_control(p, method="bh")): reject where <= alpha."""
    p = np.asarray(pvalues, dtype=np.float64)
    m = p.size
    if m == 0:
        return p.copy()
    order = np.argsort(p)
    scaled = p[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(scaled[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return out


__all__ = [
    "RARE", "UNSEEN", "CategoricalComparison", "NumericComparison", "benjamini_hochberg", "bin_counts",
    "chi2_homogeneity", "chi2_pvalue", "compare_categorical", "compare_numeric", "ecdf_distances", "js_distance",
    "ks_pvalue", "psi",
]
