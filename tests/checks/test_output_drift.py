"""prediction_drift and label_drift: the drift rule applied to a model's outputs and to its labels."""

from __future__ import annotations

import numpy as np
import pytest

from checks.base import Status
from checks.drift import DriftWindow
from checks.label_drift import LabelDriftSettings
from checks.label_drift import evaluate as evaluate_labels
from checks.prediction_drift import Comparison, PredictionDriftSettings, evaluate
from checks.stats import ReferenceProfile

KINDS = {"prediction": "categorical", "score": "numeric"}


def outputs(rng: np.random.Generator, n: int, positive_share: float = 0.3, score_shift: float = 0.0) -> dict:
    return {"prediction": np.where(rng.random(n) < positive_share, "1", "0").astype(object),
            "score": np.clip(rng.beta(3, 7, n) + score_shift, 0, 1)}


def comparison(reference: dict, window: dict, kinds: dict = KINDS, source: str = "reference") -> Comparison:
    n = len(next(iter(window.values())))
    return Comparison(DriftWindow(window, n), ReferenceProfile.build(reference, kinds), source)


def run(reference: dict, window: dict, settings: PredictionDriftSettings | None = None, **kw):
    return evaluate({"prediction_comparison": comparison(reference, window, **kw)},
                    settings or PredictionDriftSettings())


@pytest.mark.parametrize("n", [1_000, 100_000])
def test_no_false_alarm_on_identical_outputs(n):
    for seed in range(20 if n <= 1_000 else 5):
        rng = np.random.default_rng(seed)
        result = run(outputs(rng, n), outputs(rng, n))
        assert result.status is Status.OK, (seed, result.reason)
        assert result.reason == f"no drift in 2 outputs ({n} rows)"


def test_a_ten_point_move_of_the_predicted_class_is_a_warning_when_scores_stay():
    rng = np.random.default_rng(1)
    reference = outputs(rng, 5_000)
    window = outputs(rng, 5_000, positive_share=0.4)
    window["score"] = outputs(rng, 5_000)["score"]  # scores as before: only the class share moved
    result = run(reference, window)
    assert result.status is Status.WARN
    assert result.reason.startswith("drift in 1/2 outputs: prediction ('0' 69.6%→59.9%")


def test_classes_and_scores_moving_together_is_critical():
    rng = np.random.default_rng(2)
    result = run(outputs(rng, 5_000), outputs(rng, 5_000, positive_share=0.45, score_shift=0.1))
    assert result.status is Status.CRIT
    assert result.reason.startswith("drift in 2/2 outputs: ")
    drifted = {m.dims["feature"]: m.value for m in result.metrics if m.name == "drifted"}
    assert drifted == {"prediction": 1.0, "score": 1.0}


def test_regression_output_shift_of_a_quarter_sd_is_flagged():
    rng = np.random.default_rng(3)
    kinds = {"prediction": "numeric"}
    result = run({"prediction": rng.normal(100, 20, 5_000)}, {"prediction": rng.normal(105, 20, 5_000)}, kinds=kinds)
    assert result.status is Status.CRIT
    assert result.reason.startswith("drift in 1/1 output: prediction (mean 10")


def test_no_baseline_is_insufficient_data_with_the_reason():
    window = outputs(np.random.default_rng(0), 2_000)
    missing = Comparison(DriftWindow(window, 2_000), None, "history", "no predictions in the 7d before the window")
    result = evaluate({"prediction_comparison": missing}, PredictionDriftSettings())
    assert result.status is Status.INSUFFICIENT_DATA
    assert result.reason == "no baseline: no predictions in the 7d before the window"


def test_a_small_history_baseline_is_named_as_such():
    rng = np.random.default_rng(4)
    result = run(outputs(rng, 500), outputs(rng, 2_000), source="history")
    assert result.status is Status.INSUFFICIENT_DATA
    assert result.reason == "the baseline has only 500 rows (min_rows 1000)"


def test_bad_baseline_setting_is_an_error():
    rng = np.random.default_rng(5)
    result = run(outputs(rng, 2_000), outputs(rng, 2_000), PredictionDriftSettings(baseline="yesterday"))
    assert result.status is Status.ERROR
    assert result.reason == "bad settings: baseline must be one of auto, reference, history, not 'yesterday'"


def test_label_prior_shift_is_flagged_and_a_steady_prior_is_not():
    rng = np.random.default_rng(6)
    kinds = {"label": "categorical"}

    def labels(share: float, n: int = 5_000) -> dict:
        return {"label": np.where(rng.random(n) < share, "1", "0").astype(object)}

    reference = labels(0.2)
    steady = evaluate_labels({"label_comparison": comparison(reference, labels(0.2), kinds)}, LabelDriftSettings())
    assert steady.status is Status.OK and steady.reason == "no drift in 1 label (5000 rows)"
    shifted = evaluate_labels({"label_comparison": comparison(reference, labels(0.3), kinds)}, LabelDriftSettings())
    assert shifted.status is Status.CRIT
    assert shifted.reason.startswith("drift in 1/1 label: label ('0' 80.")
