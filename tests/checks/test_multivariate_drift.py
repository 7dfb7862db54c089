"""multivariate_drift: no false alarms on identical distributions; a correlation that flips while every marginal
stays put is caught (the per-feature drift check cannot see it); the statistics match scikit-learn/scipy."""

import re

import numpy as np
import pytest
from scipy.stats import mannwhitneyu, norm
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from checks.base import Status
from checks.drift import DriftSettings, DriftWindow
from checks.drift import evaluate as drift_evaluate
from checks.multivariate_drift import (
    FOLDS,
    MultivariateDriftSettings,
    MultivariateWindow,
    auc_of,
    auc_se,
    domain_classifier,
    evaluate,
    fit_pca,
    prepare_reference,
)
from checks.stats import ReferenceProfile

KINDS = {"normal": "numeric", "lognormal": "numeric", "poisson": "numeric", "uniform": "numeric",
         "a": "numeric", "b": "numeric", "plan": "categorical", "region": "categorical"}
SMALL = MultivariateDriftSettings(reference_max_rows=6000)


def data(seed: int, n: int, rho: float = 0.8, shift: float = 0.0) -> dict[str, np.ndarray]:
    """Skewed, discrete and bounded numerics, two categoricals (2 and 8 categories, down to 2%), and a pair of
    standard normals a, b with correlation `rho`; `shift` moves `normal` by that many standard deviations."""
    r = np.random.default_rng(seed)
    a = r.normal(size=n)
    regions = np.array([f"r{i}" for i in range(8)], dtype=object)
    return {
        "normal": r.normal(50 + 10 * shift, 10, n),
        "lognormal": r.lognormal(0, 1, n),
        "poisson": r.poisson(3, n).astype(float),
        "uniform": r.uniform(0, 1, n),
        "a": a,
        "b": rho * a + np.sqrt(1 - rho**2) * r.normal(size=n),
        "plan": np.array(["monthly", "yearly"], dtype=object)[(r.random(n) < 0.35).astype(int)],
        "region": regions[r.choice(8, n, p=[0.3, 0.2, 0.15, 0.12, 0.1, 0.07, 0.04, 0.02])],
    }


def run(reference, window, settings=SMALL, n_rows=None):
    prepared = prepare_reference(reference, {k: KINDS[k] for k in reference}, settings)
    n = n_rows if n_rows is not None else len(next(iter(window.values())))
    return evaluate({"multivariate_reference": prepared, "multivariate_window": MultivariateWindow(window, n)},
                    settings)


def metric(result, name, feature=None):
    dims = {"feature": feature} if feature else {}
    values = [m.value for m in result.metrics if m.name == name and dict(m.dims) == dims]
    assert len(values) == 1, (name, feature)
    return values[0]


# -- no false alarms ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("n", "seeds"), [(1000, 6), (5000, 2)], ids=["1k", "5k"])
def test_identical_distributions_never_drift(n, seeds):
    reference = data(0, 6000)
    for seed in range(1, seeds + 1):
        result = run(reference, data(seed, n))
        assert result.status is Status.OK, (seed, result.reason)
        assert result.reason.startswith(f"no multivariate drift in 8 features ({n} rows vs {n} of the reference): "
                                        f"domain classifier AUC 0."), result.reason
        assert metric(result, "auc") < 0.55 and metric(result, "pca_increase") < 0.05


def test_two_features_never_drift_either():
    """Few features make the per-row PCA error skewed and noisy (its sd 1.7 times its mean here): the noise band
    widens with it, and the rank test assumes no shape."""
    reference = {k: v for k, v in data(0, 6000).items() if k in ("normal", "region")}
    for seed in range(1, 5):
        window = {k: v for k, v in data(seed, 1000).items() if k in ("normal", "region")}
        result = run(reference, window)
        assert result.status is Status.OK, (seed, result.reason)


# -- what it is for: joint changes --------------------------------------------------------------------------------

def test_a_flipped_correlation_is_caught_where_per_feature_drift_sees_nothing():
    reference, window = data(0, 6000), data(1, 2000, rho=-0.8)  # a and b: +0.8 -> -0.8, marginals unchanged
    per_feature = drift_evaluate({"reference_profile": ReferenceProfile.build(reference, KINDS),
                                  "drift_window": DriftWindow(window, 2000)}, DriftSettings())
    assert per_feature.status is Status.OK, per_feature.reason

    result = run(reference, window)
    assert result.status is Status.CRIT
    assert metric(result, "auc") > 0.75 and metric(result, "auc_pvalue") < 1e-6
    assert metric(result, "pca_increase") > 0.1 and metric(result, "pca_pvalue") < 1e-6
    drops = {m.dims["feature"]: m.value for m in result.metrics if m.name == "auc_drop"}
    assert sorted(drops, key=lambda f: -drops[f])[:2] in (["a", "b"], ["b", "a"])
    assert re.fullmatch(r"multivariate drift in 8 features \(2000 rows vs 2000 of the reference\): domain classifier "
                        r"AUC 0\.\d\d \(crit at 0\.65, p<1e-6\), separating features: (a, b|b, a); PCA error "
                        r"\d\.\d+ vs \d\.\d+ \(\+\d+\.\d%, crit at \d\.\d+, p<1e-6\)", result.reason), result.reason


def test_a_plain_mean_shift_is_caught_and_named():
    result = run(data(0, 6000), data(1, 2000, shift=0.75))
    assert result.status in (Status.WARN, Status.CRIT), result.reason
    assert "separating features: normal" in result.reason


def test_a_new_category_is_caught():
    window = data(1, 2000)
    window["region"][:600] = "r_new"  # 30% of rows in a category the reference never had
    result = run(data(0, 6000), window)
    assert result.status in (Status.WARN, Status.CRIT), result.reason
    assert "separating features: region" in result.reason


# -- statistics against scikit-learn / scipy ---------------------------------------------------------------------

def test_auc_is_roc_auc_score_of_each_held_out_half():
    reference, window = data(0, 1500), data(1, 1500, rho=0.3)
    prepared = prepare_reference(reference, KINDS, SMALL)
    x = np.vstack([prepared.rows, prepared.encoder.classifier_matrix(window)])
    y = np.repeat([0, 1], 1500)
    result = domain_classifier(x, y, prepared.encoder.categorical_mask, prepared.names, SMALL, rank=False)
    halves = list(StratifiedKFold(FOLDS, shuffle=True, random_state=SMALL.seed).split(x, y))
    expected = [roc_auc_score(y[test], result.scores[test]) for _, test in halves]
    assert result.fold_aucs == pytest.approx(expected, abs=1e-12)
    assert result.auc == pytest.approx(np.mean(expected), abs=1e-12)
    se = max(auc_se(int((y[t] == 0).sum()), int(y[t].sum())) for _, t in halves)
    assert result.pvalue == pytest.approx(norm.sf((result.auc - 0.5) / se))


def test_auc_and_its_standard_error_are_mann_whitney():
    r = np.random.default_rng(3)
    scores, labels = np.round(r.normal(size=900), 1), np.repeat([0, 1], [400, 500])  # ties: mid-ranks
    scores[labels == 1] += 0.2
    assert auc_of(scores, labels) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    untied = r.normal(size=900) + 0.1 * labels
    mw = mannwhitneyu(untied[labels == 1], untied[labels == 0], alternative="greater", method="asymptotic",
                      use_continuity=False)
    assert norm.sf((auc_of(untied, labels) - 0.5) / auc_se(400, 500)) == pytest.approx(mw.pvalue, rel=1e-9)


def test_reconstruction_error_matches_sklearn_pca():
    prepared = prepare_reference(data(0, 4000), KINDS, SMALL)
    z = prepared.encoder.pca_matrix(data(0, 4000))  # the same sample: reference_max_rows covers all rows
    z = z[np.random.default_rng(SMALL.seed).permutation(4000)]  # in the order prepare_reference sampled them
    fitting, held_out = z[:2000], z[2000:]
    reference_pca = PCA(n_components=SMALL.pca_variance, svd_solver="full").fit(fitting)
    ours = fit_pca(fitting, SMALL.pca_variance, held_out)
    assert ours is not None and ours.n_components == reference_pca.n_components_
    assert ours.n_components == prepared.pca.n_components
    expected = np.linalg.norm(held_out - reference_pca.inverse_transform(reference_pca.transform(held_out)), axis=1)
    np.testing.assert_allclose(ours.held_out, expected, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(prepared.pca.held_out, expected, rtol=1e-8, atol=1e-10)


def test_each_feature_weighs_the_same_in_the_pca_encoding():
    """Numeric columns standardised, a one-hot group scaled to a total variance of 1: no feature dominates."""
    reference = data(0, 4000)
    prepared = prepare_reference(reference, KINDS, SMALL)
    z = prepared.encoder.pca_matrix(reference)
    assert z.shape[1] == 6 + (2 + 1) + (8 + 1)  # a pooled column per categorical (other categories, missing)
    groups = np.split(z.var(axis=0), [1, 2, 3, 4, 5, 6, 9])
    assert [float(g.sum()) for g in groups] == pytest.approx([1.0] * 8, rel=1e-9)


# -- too little data, and what it cannot judge --------------------------------------------------------------------

def test_too_few_rows_is_insufficient_data():
    window = data(1, 999)
    result = run(data(0, 6000), window)
    assert result.status is Status.INSUFFICIENT_DATA
    assert result.reason == "only 999 rows in the window (min_rows 1000)"
    small_reference = run(data(0, 800), data(1, 2000))
    assert small_reference.status is Status.INSUFFICIENT_DATA
    assert small_reference.reason == "the reference has only 800 rows (min_rows 1000)"


def test_no_reference_is_insufficient_data():
    result = evaluate({"multivariate_reference": None, "multivariate_window": MultivariateWindow({}, 0)}, SMALL)
    assert result.status is Status.INSUFFICIENT_DATA and "reference" in result.reason


def test_window_larger_than_the_sample_cap_is_sampled_down():
    settings = MultivariateDriftSettings(reference_max_rows=6000, sample_size=1500)
    result = run(data(0, 6000), data(1, 4000), settings, n_rows=40_000)
    assert metric(result, "rows") == 40_000 and metric(result, "sample_rows") == 1500
    assert "(1500 rows vs 1500 of the reference)" in result.reason


def test_one_numeric_feature_has_no_pca_but_still_a_classifier():
    result = run({"normal": data(0, 6000)["normal"]}, {"normal": data(1, 2000, shift=1.0)["normal"]})
    assert result.status is Status.CRIT
    assert "PCA not applicable" in result.reason
    assert [m.name for m in result.metrics if m.name.startswith("pca_")] == []


def test_missing_values_are_handled_on_both_sides():
    reference, window = data(0, 6000), data(1, 1500)
    for columns in (reference, window):
        columns["lognormal"][::7] = np.nan
        columns["region"][::9] = None
    result = run(reference, window)
    assert result.status is Status.OK, result.reason


@pytest.mark.parametrize(("change", "message"), [
    ({"alpha": 0.0}, "alpha must be in (0, 1]"),
    ({"auc_warn": 0.4}, "auc_warn and auc_crit"),
    ({"pca_variance": 1.0}, "pca_variance"),
    ({"sample_size": 500}, "at least min_rows"),
])
def test_bad_settings_are_an_error(change, message):
    settings = MultivariateDriftSettings(**change)
    result = evaluate({"multivariate_reference": None, "multivariate_window": MultivariateWindow({}, 0)}, settings)
    assert result.status is Status.ERROR and message in result.reason
