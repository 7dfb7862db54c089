"""prediction_drift: has what the model outputs moved: its predicted classes, its scores, its predicted values?

A model whose inputs look fine can still change its outputs (an upstream encoding change, a feature the
drift check does not watch, a new model version), and a shift in outputs is visible at once, while the
labels that would show a performance drop arrive hours or days later. The outputs are compared with a
baseline by the drift check's machinery and decision rule (checks/drift.py: effect size AND BH-adjusted
p-value, the same defaults, the same reasoning):

    classification   `prediction` as a category (chi-squared, JS, PSI, unseen classes), `score` as a number
                     (KS, Wasserstein / sd, PSI, JS) when the model logs scores
    regression       `prediction` as a number

The baseline (`baseline`):
    "reference"  the reference file's `prediction` (and `score`) columns: the model's outputs on its
                 training or validation data, built once per reference file like the drift profile
    "history"    the model's own outputs in the `history` before the window (default the 7 days before
                 it), sampled to `reference_max_rows`: "has today moved from last week?"
    "auto"       (default) the reference when its file has a `prediction` column, else history

Config stanza (defaults):

    [models.checks.prediction_drift]
    interval = "10m"
    window = "1h"
    baseline = "auto"
    history = "7d"
    min_rows = 1000               # fewer outputs in the window (or the baseline) -> insufficient_data
    alpha = 0.001                 # as drift
    wasserstein_threshold = 0.1   # as drift
    psi_threshold = 0.2           # as drift
    js_threshold = 0.05           # as drift: about a 6-point move of one class's share
    warn_share = 0.0              # warn when any output drifted...
    crit_share = 1.0              # ...crit when all judged outputs did (class AND score; the one output
                                  #   of a regression model)
    max_rows = 1000000
    reference_max_rows = 250000

Metrics: as drift, with dims {"feature": "prediction" | "score"}.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from checks.base import CheckResult, CheckSpec, Duration, Status, register
from checks.drift import DriftSettings, DriftWindow, judge
from checks.drift import settings_problem as drift_settings_problem
from checks.stats.profile import ReferenceProfile

BASELINES = ("auto", "reference", "history")


@dataclass(frozen=True)
class PredictionDriftSettings:
    window: Duration = Duration(3600)
    baseline: str = "auto"
    history: Duration = Duration(7 * 86400)
    min_rows: int = 1000
    alpha: float = 0.001
    wasserstein_threshold: float = 0.1
    psi_threshold: float = 0.2
    js_threshold: float = 0.05
    warn_share: float = 0.0
    crit_share: float = 1.0
    max_rows: int = 1_000_000
    reference_max_rows: int = 250_000


@dataclass(frozen=True)
class Comparison:
    """The input of prediction_drift and label_drift: the window's columns and the baseline's profile of the
    same columns (or None, and why there is none)."""

    window: DriftWindow
    profile: ReferenceProfile | None
    source: str  # "reference" | "history": named in reasons
    missing: str = ""  # why there is no profile (when profile is None)


def as_drift_settings(settings: Any) -> DriftSettings:
    """The drift check's settings with the same decision parameters (single-threaded: two columns at most)."""
    shared = {f.name: getattr(settings, f.name) for f in dataclasses.fields(DriftSettings) if hasattr(settings, f.name)}
    return DriftSettings(**(shared | {"threads": 1}))


def settings_problem(settings: Any) -> str | None:
    if settings.baseline not in BASELINES:
        return f"baseline must be one of {', '.join(BASELINES)}, not {settings.baseline!r}"
    if settings.history <= 0:
        return "history must be a positive duration"
    return drift_settings_problem(as_drift_settings(settings))


def evaluate_comparison(comparison: Comparison, settings: Any, noun: str) -> CheckResult:
    """Judge the window against the baseline with the drift rule; shared by prediction_drift and label_drift."""
    problem = settings_problem(settings)
    if problem is not None:
        return CheckResult(Status.ERROR, f"bad settings: {problem}")
    if comparison.profile is None:
        return CheckResult(Status.INSUFFICIENT_DATA, f"no baseline: {comparison.missing}")
    return judge(comparison.profile, comparison.window, as_drift_settings(settings), noun=noun,
                 baseline="baseline" if comparison.source == "history" else "reference")


def evaluate(inputs: Mapping[str, Any], settings: PredictionDriftSettings) -> CheckResult:
    """inputs: `prediction_comparison` (Comparison of columns `prediction` and, with scores, `score`)."""
    return evaluate_comparison(inputs["prediction_comparison"], settings, "output")


SPEC = register(
    CheckSpec(
        name="prediction_drift",
        scope="model",
        settings=PredictionDriftSettings,
        inputs=("prediction_comparison",),
        evaluate=evaluate,
        default_interval=600.0,
        description="drift of the predicted classes, scores or values against the reference or recent history",
        historical=True,
    )
)
