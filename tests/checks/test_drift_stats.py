"""Drift statistics against scipy on fixed data: same method, same answer (1e-9); binned ones on the same bins."""

import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import jensenshannon

from checks.stats import ReferenceProfile, kind_of_type
from checks.stats.profile import RARE, categorical_reference, category_counts, numeric_reference, quantile_edges
from checks.stats.univariate import (
    UNSEEN,
    benjamini_hochberg,
    bin_counts,
    chi2_homogeneity,
    chi2_pvalue,
    compare_categorical,
    compare_numeric,
    ecdf_distances,
    js_distance,
    ks_pvalue,
    psi,
)

EXACT = {"rel": 1e-9, "abs": 1e-12}
# scipy's own ks_2samp warns computing a p-value for one value a side; those cases compare statistics only
pytestmark = pytest.mark.filterwarnings("ignore:divide by zero encountered in divide:RuntimeWarning")


def _rng(seed):
    return np.random.default_rng(seed)


# (reference, window): continuous, heavy ties, far from zero, heavy tail, disjoint ranges, tiny samples
SAMPLES = {
    "normal, unequal sizes": (_rng(1).normal(0, 1, 3000), _rng(2).normal(0.1, 1.1, 1700)),
    "integers with ties": (_rng(3).poisson(3, 2000).astype(float), _rng(4).poisson(3.3, 2500).astype(float)),
    "offset 1e6, rounded": (np.round(1e6 + _rng(5).normal(0, 2, 1500), 1),
                            np.round(1e6 + _rng(6).normal(0, 2, 900), 1)),
    "log-normal tail": (_rng(7).lognormal(0, 2, 4000), _rng(8).lognormal(0.1, 2, 4000)),
    "window above the reference": (_rng(9).uniform(0, 1, 500), _rng(10).uniform(2, 3, 400)),
    "window inside one reference gap": (np.array([0.0, 10.0, 10.0, 20.0]), np.array([4.0, 5.0, 5.0, 6.0, 9.0])),
    "constant window on a reference value": (np.array([1.0, 2.0, 2.0, 3.0]), np.array([2.0, 2.0, 2.0])),
    "single values": (np.array([1.0]), np.array([1.5])),
}


def ks_and_w1(ref, window, **kw):
    profile = numeric_reference("x", ref)
    return ecdf_distances(profile.sorted_values, profile.prefix_sums, profile.center, np.sort(window), **kw)


@pytest.mark.parametrize("name", SAMPLES)
def test_ks_statistic_pvalue_and_wasserstein_equal_scipy(name):
    ref, window = SAMPLES[name]
    result = compare_numeric(numeric_reference("x", ref), window)
    expected = stats.ks_2samp(ref, window, method="asymp")
    assert result.ks_statistic == pytest.approx(expected.statistic, **EXACT)
    if round(len(ref) * len(window) / (len(ref) + len(window))) >= 1:  # else both are NaN (one value a side)
        assert result.ks_pvalue == pytest.approx(expected.pvalue, **EXACT)
    assert result.wasserstein == pytest.approx(stats.wasserstein_distance(ref, window), **EXACT)


@pytest.mark.parametrize("name", ["normal, unequal sizes", "integers with ties", "offset 1e6, rounded"])
def test_blocks_of_window_values_give_the_same_answer_as_one_block(name):
    ref, window = SAMPLES[name]
    whole = ks_and_w1(ref, window)
    assert ks_and_w1(ref, window, chunk=7) == pytest.approx(whole, **EXACT)
    assert ks_and_w1(ref, window, chunk=1) == pytest.approx(whole, **EXACT)


def test_at_a_million_rows_the_statistics_still_equal_scipy():
    ref, window = _rng(11).lognormal(3, 1.5, 1_000_000), _rng(12).lognormal(3, 1.5, 1_000_000)
    d, w1 = ks_and_w1(ref, window)
    assert d == pytest.approx(stats.ks_2samp(ref, window, method="asymp").statistic, **EXACT)
    assert w1 == pytest.approx(stats.wasserstein_distance(ref, window), **EXACT)


values = st.lists(st.integers(-4, 4).map(lambda i: i * 0.5) | st.floats(-5, 5, allow_nan=False), min_size=1,
                  max_size=40)


@settings(max_examples=300, deadline=None)
@given(values, values, st.integers(1, 8))
def test_any_samples_with_ties_match_scipy(ref, window, chunk):
    ref, window = np.array(ref), np.array(window)
    d, w1 = ks_and_w1(ref, window, chunk=chunk)
    assert d == pytest.approx(stats.ks_2samp(ref, window, method="asymp").statistic, **EXACT)
    assert w1 == pytest.approx(stats.wasserstein_distance(ref, window), rel=1e-9, abs=1e-9)


def test_ks_pvalue_is_the_asymptotic_one_at_every_size():
    """Documented choice: scipy would use the exact distribution up to 10 000 values a side; we use asymp."""
    ref, window = SAMPLES["normal, unequal sizes"]
    ours = compare_numeric(numeric_reference("x", ref), window).ks_pvalue
    assert ours == pytest.approx(stats.ks_2samp(ref, window, method="asymp").pvalue, **EXACT)
    exact = stats.ks_2samp(ref, window, method="exact").pvalue
    assert ours == pytest.approx(exact, rel=0.05)  # the two agree closely at these sizes


def test_large_windows_get_scipys_pvalue_except_the_far_tail_which_uses_the_asymptotic_expansion():
    ref, window = _rng(18).normal(0, 1, 200_000), _rng(19).normal(0, 1, 200_000)  # p ~ 0.5: no shortcut
    ours = compare_numeric(numeric_reference("x", ref), window).ks_pvalue
    assert ours == pytest.approx(stats.ks_2samp(ref, window, method="asymp").pvalue, **EXACT)
    for en, nx2 in [(20_000, 2.2), (20_000, 5.0), (100_000, 3.0), (100_000, 8.0)]:  # p from 0.025 to 1e-7
        d = math.sqrt(nx2 / en)
        expected = stats.kstwo.sf(d, en)  # what ks_2samp computes, slowly
        assert ks_pvalue(d, 2 * en, 2 * en) == pytest.approx(expected, rel=1e-3 if expected >= 1e-4 else 2e-2)
    assert ks_pvalue(0.05, 2_000_000, 2_000_000) == 0.0  # en d^2 >= 370: scipy's 0 too


def test_wasserstein_is_normalised_by_the_reference_std_so_a_shift_reads_in_sds():
    ref = _rng(13).normal(100, 20, 200_000)
    result = compare_numeric(numeric_reference("x", ref), ref + 5.0)  # a quarter of a standard deviation
    assert result.wasserstein == pytest.approx(5.0, rel=1e-9)
    assert result.wasserstein_normalized == pytest.approx(0.25, rel=0.01)


def test_a_constant_reference_feature_is_measured_in_its_own_units():
    result = compare_numeric(numeric_reference("x", np.full(1000, 3.0)), np.full(1000, 3.5))
    assert result.wasserstein_normalized == pytest.approx(0.5)
    assert result.ks_statistic == 1.0


# -- bins, PSI, JS ------------------------------------------------------------------------------------------

def test_bins_are_the_reference_deciles_and_counts_match_digitize():
    ref = _rng(14).normal(size=10_000)
    profile = numeric_reference("x", ref)
    assert profile.edges.size == 9
    assert profile.bin_shares == pytest.approx(np.full(10, 0.1))
    window = _rng(15).normal(0.3, 1, 3_000)
    expected = np.bincount(np.digitize(window, profile.edges, right=True), minlength=10)
    assert bin_counts(np.sort(window), profile.edges).tolist() == expected.tolist()


def test_a_discrete_feature_gets_bins_on_its_values():
    assert quantile_edges(np.sort(np.array([0.0] * 70 + [1.0] * 30)), 10).tolist() == [0.0, 1.0]
    profile = numeric_reference("x", np.array([0.0] * 70 + [1.0] * 30))
    assert profile.bin_shares.tolist() == pytest.approx([0.7, 0.3, 0.0])


def test_js_distance_equals_scipy_on_the_same_bins():
    profile = numeric_reference("x", _rng(16).normal(size=5000))
    window = _rng(17).normal(0.4, 1.2, 4000)
    result = compare_numeric(profile, window)
    shares = bin_counts(np.sort(window), profile.edges) / window.size
    assert result.js_distance == pytest.approx(jensenshannon(profile.bin_shares, shares, base=2), **EXACT)
    with_empty = (np.array([0.5, 0.5, 0.0]), np.array([0.2, 0.3, 0.5]))
    assert js_distance(*with_empty) == pytest.approx(jensenshannon(*with_empty, base=2), **EXACT)


def test_psi_by_hand_and_with_an_empty_bin():
    # (0.6 - 0.5) ln(0.6/0.5) + (0.4 - 0.5) ln(0.4/0.5)
    assert psi(np.array([0.5, 0.5]), np.array([0.6, 0.4])) == pytest.approx(0.1 * math.log(1.2) - 0.1 * math.log(0.8))
    # an empty reference bin counts as 1e-4, so a new 5% bin weighs 0.05 ln(500): finite, and sizeable
    value = psi(np.array([0.5, 0.5, 0.0]), np.array([0.475, 0.475, 0.05]))
    assert value == pytest.approx(2 * (-0.025) * math.log(0.95) + (0.05 - 1e-4) * math.log(0.05 / 1e-4))


# -- categorical ----------------------------------------------------------------------------------------------

def test_chi_squared_equals_scipy_contingency_without_yates_correction():
    ref = np.array(["a"] * 500 + ["b"] * 300 + ["c"] * 200, dtype=object)
    window = np.array(["a"] * 330 + ["b"] * 170 + ["c"] * 100 + ["d"] * 20 + [None] * 7, dtype=object)
    result = compare_categorical(categorical_reference("c", ref), window)
    assert result.columns == ("a", "b", "c", UNSEEN)
    table = np.array([[500, 300, 200, 0], [330, 170, 100, 20]])
    expected = stats.chi2_contingency(table, correction=False)
    assert result.chi2_statistic == pytest.approx(expected.statistic, **EXACT)
    assert result.chi2_pvalue == pytest.approx(expected.pvalue, **EXACT)
    assert result.chi2_dof == expected.dof == 3
    assert result.js_distance == pytest.approx(jensenshannon(table[0], table[1], base=2), **EXACT)
    assert result.unseen_share == pytest.approx(20 / 620)
    assert result.missing == 7


def test_a_two_category_table_is_tested_like_any_other_without_continuity_correction():
    stat, dof = chi2_homogeneity(np.array([700, 300]), np.array([640, 360]))
    expected = stats.chi2_contingency(np.array([[700, 300], [640, 360]]), correction=False)
    assert (stat, dof) == (pytest.approx(expected.statistic, **EXACT), 1)
    assert chi2_pvalue(stat, dof) == pytest.approx(expected.pvalue, **EXACT)
    assert chi2_pvalue(stat, dof) < stats.chi2_contingency(np.array([[700, 300], [640, 360]])).pvalue


def test_rare_reference_categories_share_one_column():
    ref = ["a"] * 600 + ["b"] * 396 + ["r1"] * 3 + ["r2"]
    profile = categorical_reference("c", ref)
    assert profile.columns == ("a", "b", RARE)
    assert profile.counts.tolist() == [600, 396, 4]
    assert profile.rare_categories == 2
    result = compare_categorical(profile, ["a"] * 500 + ["r2"] * 50)
    assert result.window_counts.tolist() == [500, 0, 50] and result.unseen == ()


def test_window_categories_may_come_as_counts_or_arrow():
    ref = categorical_reference("c", ["x"] * 60 + ["y"] * 40)
    window = ["x"] * 30 + ["y"] * 50 + ["z"] * 5 + [None] * 15
    from_list = compare_categorical(ref, window)
    from_counts = compare_categorical(ref, {"x": 30, "y": 50, "z": 5}, n_rows=100)
    from_arrow = compare_categorical(ref, pa.array(window))
    for other in (from_counts, from_arrow):
        assert other.window_counts.tolist() == from_list.window_counts.tolist() == [30, 50, 5]
        assert other.chi2_statistic == from_list.chi2_statistic
        assert other.missing == from_list.missing == 15
        assert other.unseen == from_list.unseen == (("z", 5),)


def test_missing_categories_are_none_and_nan():
    counts, missing = category_counts(np.array(["a", None, float("nan"), "a", "b"], dtype=object))
    assert counts == {"a": 2, "b": 1} and missing == 2


# -- BH, profile ------------------------------------------------------------------------------------------------

def test_benjamini_hochberg_equals_scipy():
    p = np.array([0.01, 0.04, 0.03, 0.2, 0.0001, 0.5, 0.049, 1.0, 0.0])
    assert benjamini_hochberg(p) == pytest.approx(stats.false_discovery_control(p, method="bh"), **EXACT)


def test_profile_infers_kinds_drops_missing_and_samples_the_same_rows_every_time():
    n = 10_000
    columns = {"age": np.where(np.arange(n) % 10 == 0, np.nan, np.arange(n, dtype=float)),
               "plan": np.array(["basic", "pro"] * (n // 2), dtype=object),
               "flag": np.arange(n) % 3 == 0}
    profile = ReferenceProfile.build(columns, max_rows=None)
    assert [f.kind for f in profile.features.values()] == ["numeric", "categorical", "categorical"]
    assert profile.features["age"].n == 9000 and profile.features["age"].missing == 1000
    sampled = ReferenceProfile.build(columns, max_rows=2000)
    again = ReferenceProfile.build(columns, max_rows=2000)
    assert sampled.n_rows == 2000 and sampled.source_rows == n
    assert np.array_equal(sampled.features["age"].sorted_values, again.features["age"].sorted_values)
    arrow = ReferenceProfile.build({"age": pa.array([1.0, None, 3.0]), "plan": pa.array(["a", None, "b"])})
    assert arrow.features["age"].n == 2 and arrow.features["plan"].kind == "categorical"


def test_config_feature_types_map_to_kinds():
    assert [kind_of_type(t) for t in ("DOUBLE", "BIGINT", "VARCHAR", "BOOLEAN", "category")] == [
        "numeric", "numeric", "categorical", "categorical", "categorical"]
    with pytest.raises(ValueError, match="no drift kind for feature type 'blob'"):
        kind_of_type("blob")


def test_nulls_read_from_duckdb_are_missing_not_a_category():
    """DuckDB's fetchnumpy gives a masked array for a VARCHAR column with NULLs; they must count as missing."""
    import duckdb

    from checks.stats.profile import category_counts

    column = duckdb.connect().execute("SELECT * FROM (VALUES ('a'), (NULL), ('b'), (NULL)) t(c)").fetchnumpy()["c"]
    assert category_counts(column) == ({"a": 1, "b": 1}, 2)
