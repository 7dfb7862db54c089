"""label_drift: has the ground truth itself moved (prior shift)?

When the share of positives (or the distribution of a regression target) changes, a model calibrated on
the old priors over- or under-predicts even if every input looks familiar; and a performance drop that
comes with a label shift reads differently from one that does not. The labels known at evaluation time for
the window's predictions (point in time: a label counts only once it has arrived) are compared with a
baseline by the drift check's machinery and decision rule (checks/drift.py):

    classification   the label as a category (chi-squared, JS, PSI, classes never seen in the baseline)
    regression       the label as a number (KS, Wasserstein / sd, PSI, JS)

Baseline (`baseline`): "reference" = the reference file's target column (`target` of the model, default
`label`); "history" = the labels of the model's predictions in the `history` before the window;
"auto" (default) = the reference when its file has the target column, else history.

Config stanza (defaults; the decision parameters are the drift check's, see there for their reasons):

    [models.checks.label_drift]
    interval = "1h"
    window = "1d"                 # labels arrive late: a day of predictions, like the performance check
    baseline = "auto"
    history = "7d"
    min_rows = 1000               # fewer labelled predictions in the window -> insufficient_data
    alpha = 0.001
    wasserstein_threshold = 0.1
    psi_threshold = 0.2
    js_threshold = 0.05           # about a 6-point move of the positive share at 50 %
    warn_share = 0.0
    crit_share = 1.0              # one column: a material, significant prior shift is crit
    max_rows = 1000000
    reference_max_rows = 250000

Metrics: as drift, with dims {"feature": "label"}.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from checks.base import CheckResult, CheckSpec, Duration, register
from checks.prediction_drift import PredictionDriftSettings, evaluate_comparison


@dataclass(frozen=True)
class LabelDriftSettings(PredictionDriftSettings):
    window: Duration = Duration(86400)


def evaluate(inputs: Mapping[str, Any], settings: LabelDriftSettings) -> CheckResult:
    """inputs: `label_comparison` (prediction_drift.Comparison of the column `label`)."""
    return evaluate_comparison(inputs["label_comparison"], settings, "label")


SPEC = register(
    CheckSpec(
        name="label_drift",
        scope="model",
        settings=LabelDriftSettings,
        inputs=("label_comparison",),
        evaluate=evaluate,
        default_interval=3600.0,
        description="prior shift: drift of the arrived labels against the reference's target or recent history",
        historical=True,
    )
)
