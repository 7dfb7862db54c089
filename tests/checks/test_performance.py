"""performance: scikit-learn's metrics on the labelled window, judged against a baseline."""

import numpy as np
import pytest
from sklearn import metrics as skm

from checks.base import Status
from checks.performance import PerformanceSettings, compute, evaluate, expected_calibration_error

rng = np.random.default_rng(0)
TRUTH = rng.integers(0, 2, 500)
SCORE = np.clip(TRUTH * 0.6 + rng.normal(0.2, 0.25, 500), 0, 1)
PRED = (SCORE > 0.5).astype(int)


def test_binary_metrics_equal_scikit_learn():
    got = compute("classification", TRUTH.astype(str), PRED.astype(str), SCORE, "1")
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(TRUTH, PRED), abs=1e-12)
    assert got["f1"] == pytest.approx(skm.f1_score(TRUTH, PRED), abs=1e-12)
    assert got["precision"] == pytest.approx(skm.precision_score(TRUTH, PRED), abs=1e-12)
    assert got["recall"] == pytest.approx(skm.recall_score(TRUTH, PRED), abs=1e-12)
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(TRUTH, SCORE), abs=1e-12)
    assert got["pr_auc"] == pytest.approx(skm.average_precision_score(TRUTH, SCORE), abs=1e-12)
    assert got["log_loss"] == pytest.approx(skm.log_loss(TRUTH, np.clip(SCORE, 1e-15, 1 - 1e-15)), abs=1e-12)
    assert got["brier"] == pytest.approx(skm.brier_score_loss(TRUTH, SCORE), abs=1e-12)


def test_multiclass_is_macro_averaged_and_regression_matches_too():
    y, p = np.array(["a", "b", "c", "a", "b"]), np.array(["a", "b", "b", "a", "c"])
    got = compute("classification", y, p, None, "1")
    assert got["f1"] == pytest.approx(skm.f1_score(y, p, average="macro"), abs=1e-12)
    assert "roc_auc" not in got
    t, q = rng.normal(100, 10, 200), rng.normal(100, 10, 200)
    reg = compute("regression", t, q, None, "1")
    assert reg["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(t, q)), abs=1e-9)
    assert reg["mape"] == pytest.approx(skm.mean_absolute_percentage_error(t, q), abs=1e-12)
    assert reg["r2"] == pytest.approx(skm.r2_score(t, q), abs=1e-12)


def test_expected_calibration_error_of_a_perfectly_calibrated_and_a_biased_model():
    scores = np.repeat([0.05, 0.95], 100)
    truth = np.concatenate([np.r_[np.ones(5), np.zeros(95)], np.r_[np.ones(95), np.zeros(5)]])
    assert expected_calibration_error(truth, scores) == pytest.approx(0.0, abs=1e-12)
    assert expected_calibration_error(truth, np.full(200, 0.9)) == pytest.approx(0.4, abs=1e-12)


def window(n=500, reference=None, y_pred=PRED):
    return {"performance_window": {"task": "classification", "y_true": TRUTH[:n].astype(str),
                                   "y_pred": y_pred[:n].astype(str), "score": SCORE[:n], "reference": reference}}


def test_judged_relative_to_the_baseline():
    accuracy = skm.accuracy_score(TRUTH, PRED)
    ok = evaluate(window(), PerformanceSettings(baseline=accuracy))
    assert ok.status is Status.OK and ok.reason.startswith(f"accuracy {accuracy:.4g} on 500 labelled predictions")
    worse = evaluate(window(), PerformanceSettings(baseline=accuracy / 0.93))  # 7 % worse
    assert worse.status is Status.WARN and "(warn at 5%)" in worse.reason
    assert evaluate(window(), PerformanceSettings(baseline=accuracy / 0.8)).status is Status.CRIT


def test_the_reference_predictions_give_the_baseline():
    reference = {"y_true": TRUTH.astype(str), "y_pred": TRUTH.astype(str), "score": None}  # a perfect model
    result = evaluate(window(), PerformanceSettings())
    assert result.status is Status.OK and "no baseline" in result.reason
    judged = evaluate(window(reference=reference), PerformanceSettings())
    assert judged.status is Status.CRIT and "baseline 1" in judged.reason


def test_too_few_labels_is_insufficient_data():
    assert evaluate(window(n=10), PerformanceSettings()).status is Status.INSUFFICIENT_DATA
