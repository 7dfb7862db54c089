"""drift: no false alarms on identical distributions at any size; real drift caught at 5 000 rows.

The 1M-row null case runs 3 seeds here (a few seconds); MODELTOP_DRIFT_FULL=1 runs all 20.
"""

import os
import re
from pathlib import Path

import numpy as np
import pytest

import checks
from checks.base import Status
from checks.drift import DriftSettings, DriftWindow, compare, evaluate, profile_from_reference
from checks.stats import ReferenceProfile
from daemon.config import load_config
from support import BASE_CONFIG

# Seven numeric shapes (symmetric, skewed, heavy-tailed, bounded, discrete with ties, rounded, bimodal) and
# five categorical ones (2 to 20 categories, down to 1.5% shares).
NUMERIC = [
    lambda r, n: r.normal(50, 10, n),
    lambda r, n: r.lognormal(0, 1, n),
    lambda r, n: r.exponential(2, n),
    lambda r, n: r.uniform(0, 1, n),
    lambda r, n: r.poisson(3, n).astype(float),
    lambda r, n: np.round(r.normal(0, 1, n), 1),
    lambda r, n: np.where(r.random(n) < 0.3, r.normal(-2, 0.5, n), r.normal(1, 1, n)),
]
ZIPF = np.array([1 / (i + 1) for i in range(10)])
GEOMETRIC = np.array([0.9**i for i in range(20)])
CATEGORICAL = [
    (["yes", "no"], [0.7, 0.3]),
    (["a", "b", "c"], [0.5, 0.3, 0.2]),
    (["n", "s", "e", "w", "c"], [0.35, 0.25, 0.2, 0.12, 0.08]),
    ([f"k{i}" for i in range(10)], ZIPF / ZIPF.sum()),
    ([f"z{i}" for i in range(20)], GEOMETRIC / GEOMETRIC.sum()),
]
FULL = os.environ.get("MODELTOP_DRIFT_FULL") == "1"


def categories(r, n, labels, shares):
    return np.array(labels, dtype=object)[r.choice(len(labels), n, p=shares)]


def data(seed, n, n_numeric=20):
    """One sample of the model's inputs: x0..x{n_numeric-1} numeric (cycling the shapes), c0..c4 categorical."""
    r = np.random.default_rng(seed)
    columns = {f"x{i}": NUMERIC[i % len(NUMERIC)](r, n) for i in range(n_numeric)}
    columns |= {f"c{j}": categories(r, n, *CATEGORICAL[j]) for j in range(len(CATEGORICAL))}
    return columns


def run(reference, window, settings=None, n_rows=None):
    profile = ReferenceProfile.build(reference, max_rows=None)
    n = n_rows if n_rows is not None else len(next(iter(window.values())))
    return evaluate({"reference_profile": profile, "drift_window": DriftWindow(window, n)},
                    settings or DriftSettings())


def metric(result, name, feature=None):
    dims = {"feature": feature} if feature else {}
    values = [m.value for m in result.metrics if m.name == name and dict(m.dims) == dims]
    assert len(values) == 1, (name, feature)
    return values[0]


def drifted(result):
    return {m.dims["feature"] for m in result.metrics if m.name == "drifted" and m.value == 1.0}


# -- no false alarms ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("n", "seeds", "n_numeric"), [
    (1_000, 20, 20),
    (100_000, 20, 7),
    (1_000_000, 20 if FULL else 3, 5),
], ids=["1k", "100k", "1M"])
def test_identical_distributions_never_drift(n, seeds, n_numeric):
    features = n_numeric + len(CATEGORICAL)
    reference = data(0, n, n_numeric)
    for seed in range(1, seeds + 1):  # each seed's window is the next one's reference: half the generating
        window = data(seed, n, n_numeric)
        result = run(reference, window)
        assert result.status is Status.OK, (seed, result.reason)
        assert result.reason == f"no drift in {features} features ({n} rows)"
        assert metric(result, "drifted_features") == 0.0
        reference = window


def test_a_real_but_tiny_shift_in_a_large_window_is_significant_yet_not_material():
    """The effect gate: at 300k rows KS rejects a 0.03 sd shift, which is no reason to wake anyone."""
    r = np.random.default_rng(5)
    result = run({"x": r.normal(0, 1, 300_000)}, {"x": r.normal(0.03, 1, 300_000)})
    assert metric(result, "ks_pvalue_adjusted", "x") < 1e-6
    assert metric(result, "wasserstein_normalized", "x") == pytest.approx(0.03, abs=0.005)
    assert result.status is Status.OK and drifted(result) == set()


def test_noise_in_a_small_window_is_large_yet_not_significant():
    """The test gate: 40 rows against 40 move every effect size past its threshold by chance alone."""
    report = compare(ReferenceProfile.build(data(0, 40)), DriftWindow(data(1, 40), 40), DriftSettings(min_rows=30))
    material = [f.name for f in report.features if f.material]
    assert len(material) >= 10
    assert report.drifted == ()


# -- real drift caught at 5 000 rows ----------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(3))
def test_a_quarter_standard_deviation_mean_shift_is_flagged(seed):
    window = data(2 * seed + 1, 5000)
    window["x0"] = window["x0"] + 2.5  # normal(50, 10)
    result = run(data(2 * seed, 5000), window)
    assert result.status is Status.WARN
    assert drifted(result) == {"x0"}
    assert re.fullmatch(r"drift in 1/25 features: x0 \(mean (49|50)(\.\d+)?→5[23](\.\d+)?, wasserstein 0\.2\d sd, "
                        r"psi 0\.\d\d, ks p<1e-6\)", result.reason), result.reason
    assert metric(result, "drifted_share") == pytest.approx(1 / 25)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize(("feature", "shares", "moved"), [  # c1: "a" 50% -> 60%; c0: 70/30 -> 60/40
    ("c1", [0.6, 0.24, 0.16], "'a' (49|5\\d)\\.\\d%→(5[89]|6\\d)\\.\\d%"),
    ("c0", [0.6, 0.4], "'yes' (6[89]|7\\d)\\.\\d%→(5\\d|6[012])\\.\\d%|'no' (2\\d|3[012])\\.\\d%→(3[89]|4\\d)\\.\\d%"),
])
def test_a_ten_point_shift_of_one_category_share_is_flagged(seed, feature, shares, moved):
    window = data(2 * seed + 1, 5000)
    labels = CATEGORICAL[int(feature[1])][0]
    window[feature] = categories(np.random.default_rng(100 + seed), 5000, labels, shares)
    result = run(data(2 * seed, 5000), window)
    assert drifted(result) == {feature}
    assert re.fullmatch(rf"drift in 1/25 features: {feature} \(({moved}), js 0\.\d\d, psi 0\.\d\d, chi2 p<1e-6\)",
                        result.reason), result.reason


@pytest.mark.parametrize("seed", range(3))
def test_a_new_category_taking_five_percent_of_rows_is_flagged(seed):
    window = data(2 * seed + 1, 5000)
    labels, shares = CATEGORICAL[2]
    window["c2"] = categories(np.random.default_rng(200 + seed), 5000, [*labels, "central"],
                              [*(np.array(shares) * 0.95), 0.05])
    result = run(data(2 * seed, 5000), window)
    assert drifted(result) == {"c2"}
    assert re.search(r"c2 \(new category 'central' [45]\.\d%, js 0\.1\d, psi 0\.\d\d, chi2 p<1e-6\)", result.reason)
    assert metric(result, "unseen_share", "c2") == pytest.approx(0.05, abs=0.01)


def test_a_drifted_share_below_warn_share_is_ok_but_still_named():
    window = data(1, 5000, 3)
    window["x0"] = window["x0"] + 5.0
    result = run(data(0, 5000, 3), window, DriftSettings(warn_share=0.2, crit_share=0.5))
    assert result.status is Status.OK
    assert result.reason.startswith("drift in 1/8 features (below warn_share 0.2): x0 (mean")


def test_a_third_of_the_features_drifting_is_critical_and_the_reason_names_the_three_largest():
    window = data(1, 5000)
    for i, shift in enumerate([0.3, 0.5, 1.0, 0.4, 0.35, 0.6, 0.45, 0.8]):
        name = f"x{i * 2}"
        window[name] = window[name] + shift * np.std(window[name])
    result = run(data(0, 5000), window)
    assert result.status is Status.CRIT
    named = re.findall(r"(x\d+) \(mean", result.reason)
    assert result.reason.startswith("drift in 8/25 features: ") and result.reason.endswith(", +5 more")
    assert len(named) == 3 and "x4" in named  # x4 moved by a whole standard deviation
    assert metric(result, "drifted_features") == 8.0


# -- what is judged, and what is not ------------------------------------------------------------------------------

def test_too_few_rows_is_insufficient_data_not_ok():
    result = run(data(0, 5000), data(1, 999))
    assert result.status is Status.INSUFFICIENT_DATA
    assert result.reason == "only 999 rows in the window (min_rows 1000)"
    small_reference = run(data(0, 500), data(1, 5000))
    assert small_reference.status is Status.INSUFFICIENT_DATA
    assert small_reference.reason == "the reference has only 500 rows (min_rows 1000)"


def test_a_model_without_reference_data_is_insufficient_data():
    result = evaluate({"reference_profile": None, "drift_window": DriftWindow({}, 5000)}, DriftSettings())
    assert result.status is Status.INSUFFICIENT_DATA
    assert "set the model's `reference`" in result.reason


def test_a_mostly_null_feature_is_left_out_and_named():
    window = data(1, 3000, 3)
    window["x1"] = np.where(np.arange(3000) < 2500, np.nan, window["x1"])
    window["c3"] = np.where(np.arange(3000) < 2500, None, window["c3"])
    result = run(data(0, 3000, 3), window)
    assert result.status is Status.OK
    assert result.reason == "no drift in 6 features (3000 rows); not judged (fewer than 1000 values): x1, c3"
    assert metric(result, "features_judged") == 6.0


def test_missing_values_do_not_count_as_drift():
    window = data(1, 5000, 3)
    window["x0"] = np.where(np.arange(5000) % 4 == 0, np.nan, window["x0"])
    window["c1"] = np.where(np.arange(5000) % 4 == 0, None, window["c1"])
    assert run(data(0, 5000, 3), window).status is Status.OK


def test_configured_features_only_and_config_mistakes_are_errors():
    reference, window = data(0, 2000, 3), data(1, 2000, 3)
    only = run(reference, window, DriftSettings(features=("x2", "c0")))
    assert only.reason == "no drift in 2 features (2000 rows)"
    unknown = run(reference, window, DriftSettings(features=("x2", "tenure")))
    assert unknown.status is Status.ERROR
    assert unknown.reason.startswith("drift features not in the reference data: tenure (it has x0, x1, x2, c0")
    del window["c4"]
    assert run(reference, window).reason == "the drift window lacks c4"
    assert run(reference, data(1, 2000, 3), DriftSettings(alpha=0.0)).reason == (
        "bad drift settings: alpha must be in (0, 1], not 0")


def test_metrics_per_feature_and_for_the_dataset():
    result = run(data(0, 2000, 1), data(1, 2000, 1))
    names = {(m.name, m.dims.get("feature")) for m in result.metrics}
    numeric = {"ks_statistic", "ks_pvalue", "ks_pvalue_adjusted", "wasserstein_normalized", "psi", "js_distance",
               "drifted"}
    categorical = {"chi2_statistic", "chi2_pvalue", "chi2_pvalue_adjusted", "unseen_share", "psi", "js_distance",
                   "drifted"}
    assert {n for n, f in names if f == "x0"} == numeric
    assert {n for n, f in names if f == "c0"} == categorical
    assert {n for n, f in names if f is None} == {"rows", "features_judged", "drifted_features", "drifted_share"}
    assert metric(result, "rows") == 2000.0


def test_threads_do_not_change_the_answer():
    reference, window = data(0, 3000), data(1, 3000)
    one = run(reference, window, DriftSettings(threads=1))
    two = run(reference, window, DriftSettings(threads=2))
    assert one == two


def test_profile_from_reference_follows_the_config_types():
    columns = {"tenure_months": np.arange(2000, dtype=float), "support_calls": np.arange(2000) % 7,
               "contract": np.array(["monthly", "yearly"] * 1000, dtype=object), "label": np.zeros(2000)}
    types = {"tenure_months": "DOUBLE", "support_calls": "BIGINT", "contract": "VARCHAR"}
    profile = profile_from_reference(columns, types, DriftSettings(reference_max_rows=1500), version="v3")
    assert profile_from_reference(columns, types, DriftSettings(features=("contract", "nope"))).names == (
        "contract",)
    assert {n: f.kind for n, f in profile.features.items()} == {
        "tenure_months": "numeric", "support_calls": "numeric", "contract": "categorical"}
    assert (profile.n_rows, profile.source_rows, profile.version) == (1500, 2000, "v3")


def test_registered_as_a_model_check_whose_settings_are_its_config(tmp_path: Path):
    spec = checks.get("drift")
    assert (spec.scope, spec.inputs) == ("model", ("reference_profile", "drift_window"))
    path = tmp_path / "modeltop.toml"
    path.write_text(BASE_CONFIG + '\n[models.checks.drift]\nwindow = "30m"\nfeatures = ["tenure_months"]\n'
                                  "alpha = 0.01\njs_threshold = 0.06\ncrit_share = 0.5\n")
    (drift,) = [c for c in load_config(path, state_dir=tmp_path).model("churn").checks if c.name == "drift"]
    assert drift.settings == DriftSettings(window=1800.0, features=("tenure_months",), alpha=0.01,
                                           js_threshold=0.06, crit_share=0.5)
    assert drift.interval == 600.0
