"""performance: scikit-learn's metrics on the labelled window, judged against a baseline and absolute thresholds."""

import subprocess
import sys

import numpy as np
import pytest
from sklearn import metrics as skm

from checks.base import Status
from checks.performance import PerformanceSettings, compute, evaluate, expected_calibration_error
from daemon.config import ConfigError, load_config
from support import BASE_CONFIG, REPO

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


ACCURACY = skm.accuracy_score(TRUTH, PRED)
REG_TRUTH = rng.normal(100, 10, 300)
REG_PRED = REG_TRUTH + rng.normal(0, 3, 300)
RMSE = float(np.sqrt(skm.mean_squared_error(REG_TRUTH, REG_PRED)))


def regression_window():
    return {"performance_window": {"task": "regression", "y_true": REG_TRUTH, "y_pred": REG_PRED,
                                   "score": None, "reference": None}}


def test_a_floor_judges_a_higher_is_better_metric_without_a_baseline():
    def run(warn=None, crit=None, metric=""):
        return evaluate(window(), PerformanceSettings(metric=metric, warning_below=warn, critical_below=crit))

    ok = run(warn=ACCURACY - 0.01, crit=ACCURACY - 0.1)
    assert ok.status is Status.OK and ok.reason == f"accuracy {ACCURACY:.4g} on 500 labelled predictions"
    at_floor = run(warn=ACCURACY, crit=ACCURACY - 0.1)  # "at or below": the floor itself warns
    assert at_floor.status is Status.WARN and at_floor.reason.endswith(f"(warn at or below {ACCURACY:.4g})")
    crit = run(warn=0.99, crit=ACCURACY + 0.01)
    assert crit.status is Status.CRIT and crit.reason.endswith(f"(crit at or below {ACCURACY + 0.01:.4g})")
    auc = skm.roc_auc_score(TRUTH, SCORE)
    assert run(crit=auc + 0.001, metric="roc_auc").status is Status.CRIT  # crit alone, on another metric
    assert run(warn=auc - 0.001, metric="roc_auc").status is Status.OK


def test_a_ceiling_judges_a_lower_is_better_metric():
    def run(**thresholds):
        return evaluate(regression_window(), PerformanceSettings(min_labelled=10, **thresholds))

    assert run(warning_above=RMSE + 0.1).status is Status.OK
    warn = run(warning_above=RMSE - 0.1, critical_above=RMSE + 0.1)
    assert warn.status is Status.WARN and warn.reason == (f"rmse {RMSE:.4g} on 300 labelled predictions "
                                                          f"(warn at or above {RMSE - 0.1:.4g})")
    assert run(warning_above=RMSE - 1, critical_above=RMSE).status is Status.CRIT  # at the ceiling
    ece = expected_calibration_error(TRUTH, SCORE)
    calibrated = evaluate(window(), PerformanceSettings(metric="ece", warning_above=ece / 2))
    assert calibrated.status is Status.WARN and "ece " in calibrated.reason


def test_relative_and_absolute_together_the_worse_wins_and_both_are_named():
    # 7 % worse than the baseline (relative warn) and below the crit floor: crit, naming both
    both = evaluate(window(), PerformanceSettings(baseline=ACCURACY / 0.93, warning_below=ACCURACY + 0.02,
                                                  critical_below=ACCURACY + 0.01))
    assert both.status is Status.CRIT
    assert "(warn at 5%)" in both.reason and both.reason.endswith(f"(crit at or below {ACCURACY + 0.01:.4g})")
    # the baseline is far worse than today (relative ok) but the floor still warns
    floor_only = evaluate(window(), PerformanceSettings(baseline=ACCURACY * 0.5, warning_below=ACCURACY))
    assert floor_only.status is Status.WARN and "worse)" in floor_only.reason
    assert floor_only.reason.endswith(f"(warn at or below {ACCURACY:.4g})")
    # relative crit beats an absolute warn
    relative = evaluate(window(), PerformanceSettings(baseline=ACCURACY / 0.8, warning_below=ACCURACY))
    assert relative.status is Status.CRIT
    assert "(crit at 10%)" in relative.reason and "(warn at or below" in relative.reason


@pytest.mark.parametrize(("settings", "message"), [
    (dict(warning_below=0.8, critical_below=0.9), "critical_below 0.9 above warning_below 0.8"),
    (dict(warning_above=5.0, critical_above=4.0), "critical_above 4 below warning_above 5"),
    (dict(metric="rmse", warning_below=3.0), "warning_below set for rmse, where lower is better: "
                                             "use warning_above/critical_above"),
    (dict(metric="f1", critical_above=0.5), "critical_above set for f1, where higher is better: "
                                            "use warning_below/critical_below"),
])
def test_inconsistent_absolute_thresholds_are_refused_with_the_reason(settings, message):
    with pytest.raises(ValueError, match=message):
        PerformanceSettings(**settings)


def test_a_floor_on_the_default_metric_of_a_regression_model_is_an_error():
    # metric "" is rmse for regression, known only when the check runs: a floor there could never mean much
    result = evaluate(regression_window(), PerformanceSettings(min_labelled=10, warning_below=0.9))
    assert result.status is Status.ERROR
    assert result.reason == ("bad performance settings: warning_below set for rmse, where lower is better: "
                             "use warning_above/critical_above")


def stanza(body):
    return BASE_CONFIG + "\n[models.checks.performance]\n" + body


def test_config_accepts_absolute_thresholds_and_refuses_them_out_of_order(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(stanza('metric = "roc_auc"\nwarning_below = 0.8\ncritical_below = 0.7\n'))
    settings = load_config(path, tmp_path / "state").models[0].checks[-1].settings
    assert (settings.metric, settings.warning_below, settings.critical_below) == ("roc_auc", 0.8, 0.7)
    done = subprocess.run([sys.executable, "-m", "daemon.cli", "check-config", str(path),
                           "--state-dir", str(tmp_path / "state")], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    path.write_text(stanza("warning_below = 0.7\ncritical_below = 0.8\n"))
    with pytest.raises(ConfigError, match="critical_below 0.8 above warning_below 0.7"):
        load_config(path, tmp_path / "state")
