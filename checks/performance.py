"""performance: how good the model is on the predictions whose ground truth has arrived.

Labels arrive late, so the window is defined on the predictions' event time and joined with the labels
known at evaluation time (a label that arrives later is never seen early: point-in-time correct). Every
metric is scikit-learn's own function on the same arrays, so values equal scikit-learn's by construction.
The status judges one metric: against a baseline, the same metric on the reference data when it carries the
model's predictions (columns `prediction` and, for probabilities, `score`), else the configured `baseline`,
and/or against absolute thresholds (a floor for metrics where higher is better, a ceiling for the others).

Config stanza (defaults and why):

    [models.checks.performance]
    interval = "10m"
    window = "1d"             # predictions with ts in the last day (labels are late: keep it wide)
    min_labelled = 50         # fewer labelled predictions -> insufficient_data
    metric = ""               # judged metric; "" = accuracy (classification) or rmse (regression)
    baseline = unset          # the metric's expected value when the reference has no predictions
    degradation_warn = 0.05   # relative: 5 % worse than the baseline -> warn
    degradation_crit = 0.10   # 10 % worse -> crit
    warning_below = unset     # absolute floor, higher-is-better metrics: metric <= this -> warn
    critical_below = unset    #   ... <= this -> crit (at or below warning_below)
    warning_above = unset     # absolute ceiling, lower-is-better metrics (LOWER_IS_BETTER): >= this -> warn
    critical_above = unset    #   ... >= this -> crit (at or above warning_above)
    positive_class = "1"      # binary classification: the class whose probability `score` is

Absolute and relative thresholds may both be set: the worse status wins and the reason names each threshold
that fired; with absolute thresholds the metric is judged even without a baseline. The absolute ones are
named by direction (below = floor, above = ceiling) so the config says what fires, and a floor set on a
lower-is-better metric (or a ceiling on a higher-is-better one) is an error rather than an alarm that can
never fire or always fires. They are spelled `warning_`/`critical_`, not `warn_`/`crit_`, on purpose: config
validation orders every `warn_x`/`crit_x` and `x_warn`/`x_crit` pair as warn <= crit, which is right for a
ceiling and backwards for a floor; `settings_problem` orders each pair by its direction instead.

Metrics: classification: accuracy, precision, recall, f1 (binary for two classes, else macro), and with
scores: roc_auc, pr_auc, log_loss, brier, ece (10 equal-width bins); regression: mae, rmse, mape, r2.
Also labelled (count), baseline_<metric> and degradation (relative, higher is worse).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from checks.base import CheckResult, CheckSpec, Duration, Metric, Status, register, threshold_status, worst

LOWER_IS_BETTER = {"mae", "rmse", "mape", "log_loss", "brier", "ece"}


@dataclass(frozen=True)
class PerformanceSettings:
    window: Duration = Duration(86400)
    min_labelled: int = 50
    metric: str = ""
    baseline: float | None = None
    degradation_warn: float = 0.05
    degradation_crit: float = 0.10
    warning_below: float | None = None
    critical_below: float | None = None
    warning_above: float | None = None
    critical_above: float | None = None
    positive_class: str = "1"

    def __post_init__(self) -> None:
        """Reject at config load what is wrong whatever the model's task (a default metric waits for evaluate)."""
        problem = settings_problem(self, self.metric or None)
        if problem is not None:
            raise ValueError(f"consistent absolute thresholds, found {problem}")


FLOORS = ("warning_below", "critical_below")
CEILINGS = ("warning_above", "critical_above")


def judged_metric(settings: Any, task: str) -> str:
    """The metric the status rests on: the configured `settings.metric`, else accuracy or rmse by the model's
    task (shared with the segments check)."""
    return settings.metric or ("accuracy" if task == "classification" else "rmse")


def settings_problem(s: PerformanceSettings, metric: str | None = None) -> str | None:
    """What is wrong with the absolute thresholds, or None; with `metric` (the judged one) also their direction.

    A floor only makes sense for a metric where higher is better and a ceiling for one where lower is better:
    the other way round it would fire on a good model or never, so it is an error, not a silent setting.
    """
    if s.warning_below is not None and s.critical_below is not None and s.critical_below > s.warning_below:
        return (f"critical_below {s.critical_below:g} above warning_below {s.warning_below:g} "
                f"(the crit floor is the lower one)")
    if s.warning_above is not None and s.critical_above is not None and s.critical_above < s.warning_above:
        return (f"critical_above {s.critical_above:g} below warning_above {s.warning_above:g} "
                f"(the crit ceiling is the higher one)")
    if metric is None:
        return None
    lower_is_better = metric in LOWER_IS_BETTER
    wrong, right = (FLOORS, CEILINGS) if lower_is_better else (CEILINGS, FLOORS)
    misplaced = [name for name in wrong if getattr(s, name) is not None]
    if misplaced:
        kind = "lower" if lower_is_better else "higher"
        return (f"{'/'.join(misplaced)} set for {metric}, where {kind} is better: "
                f"use {right[0]}/{right[1]}")
    return None


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, score: np.ndarray | None,
                           positive: str) -> dict[str, float]:
    from sklearn import metrics as skm  # imported on first use: the CLI loads every check's module

    classes = np.unique(np.concatenate([y_true, y_pred]))
    binary = len(classes) <= 2 and positive in classes
    average = "binary" if binary else "macro"
    kwargs = {"pos_label": positive} if binary else {}
    out = {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        "precision": skm.precision_score(y_true, y_pred, average=average, zero_division=0, **kwargs),
        "recall": skm.recall_score(y_true, y_pred, average=average, zero_division=0, **kwargs),
        "f1": skm.f1_score(y_true, y_pred, average=average, zero_division=0, **kwargs),
    }
    if score is not None and binary and not np.isnan(score).any():
        truth = (y_true == positive).astype(int)
        if len(np.unique(truth)) == 2:
            out["roc_auc"] = skm.roc_auc_score(truth, score)
            out["pr_auc"] = skm.average_precision_score(truth, score)
            out["log_loss"] = skm.log_loss(truth, np.clip(score, 1e-15, 1 - 1e-15), labels=[0, 1])
        out["brier"] = skm.brier_score_loss(truth, score)
        out["ece"] = expected_calibration_error(truth, score)
    return {k: float(v) for k, v in out.items()}


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    from sklearn import metrics as skm

    return {
        "mae": float(skm.mean_absolute_error(y_true, y_pred)),
        "rmse": float(np.sqrt(skm.mean_squared_error(y_true, y_pred))),
        "mape": float(skm.mean_absolute_percentage_error(y_true, y_pred)),
        "r2": float(skm.r2_score(y_true, y_pred)),
    }


def expected_calibration_error(truth: np.ndarray, score: np.ndarray, bins: int = 10) -> float:
    """Mean |observed rate - mean score| over equal-width score bins, weighted by the bin's share."""
    index = np.minimum((score * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            total += mask.mean() * abs(truth[mask].mean() - score[mask].mean())
    return float(total)


def compute(task: str, y_true: np.ndarray, y_pred: np.ndarray, score: np.ndarray | None,
            positive: str) -> dict[str, float]:
    if task == "regression":
        return regression_metrics(y_true.astype(float), y_pred.astype(float))
    return classification_metrics(y_true.astype(str), y_pred.astype(str), score, positive)


def evaluate(inputs: Mapping[str, Any], settings: PerformanceSettings) -> CheckResult:
    """inputs: `performance_window`: task, y_true, y_pred, score (array or None) of the labelled
    predictions in the window, and `reference` (the same three for the reference data, or None)."""
    w = inputs["performance_window"]
    task, n = w["task"], len(w["y_true"])
    metric = judged_metric(settings, task)
    problem = settings_problem(settings, metric)
    if problem is not None:
        return CheckResult(Status.ERROR, f"bad performance settings: {problem}")
    if n < settings.min_labelled:
        return CheckResult(Status.INSUFFICIENT_DATA, f"only {n} labelled predictions in the window "
                                                     f"(min_labelled {settings.min_labelled})",
                           (Metric("labelled", float(n)),))
    values = compute(task, w["y_true"], w["y_pred"], w["score"], settings.positive_class)
    metrics = [Metric("labelled", float(n)), *(Metric(k, v) for k, v in values.items())]
    if metric not in values:
        return CheckResult(Status.ERROR, f"metric {metric!r} is not available for this model "
                                         f"(has {', '.join(values)})", tuple(metrics))
    baseline = settings.baseline
    ref = w.get("reference")
    if ref is not None and len(ref["y_true"]):
        baseline = compute(task, ref["y_true"], ref["y_pred"], ref["score"], settings.positive_class).get(metric)
    value = values[metric]
    reason = f"{metric} {value:.4g} on {n} labelled predictions"
    absolute, absolute_note = absolute_status(value, metric, settings)
    if baseline is None:
        if absolute_note is None:
            return CheckResult(Status.OK, reason + " (no baseline to judge against)", tuple(metrics))
        return CheckResult(absolute, reason + absolute_note, tuple(metrics))
    metrics.append(Metric(f"baseline_{metric}", float(baseline)))
    scale = abs(baseline) if baseline else 1.0
    worse = (value - baseline) if metric in LOWER_IS_BETTER else (baseline - value)
    degradation = worse / scale
    metrics.append(Metric("degradation", degradation))
    relative = threshold_status(degradation, settings.degradation_warn, settings.degradation_crit)
    reason += f", baseline {baseline:.4g} ({degradation:+.1%} worse)"
    if relative is not Status.OK:
        limit = settings.degradation_crit if relative is Status.CRIT else settings.degradation_warn
        reason += f" ({relative.value} at {limit:.0%})"
    return CheckResult(worst([relative, absolute]), reason + (absolute_note or ""), tuple(metrics))


def absolute_status(value: float, metric: str, s: PerformanceSettings) -> tuple[Status, str | None]:
    """The status from the absolute floor (higher-is-better metric) or ceiling (lower-is-better), and the
    note for the reason: None when neither is set, "" when set but not reached, else which one fired."""
    lower_is_better = metric in LOWER_IS_BETTER
    warn, crit = (s.warning_above, s.critical_above) if lower_is_better else (s.warning_below, s.critical_below)
    if warn is None and crit is None:
        return Status.OK, None
    status = threshold_status(value, warn, crit, higher_is_worse=lower_is_better)
    if status is Status.OK:
        return status, ""
    limit = crit if status is Status.CRIT else warn
    return status, f" ({status.value} at or {'above' if lower_is_better else 'below'} {limit:.4g})"


SPEC = register(
    CheckSpec(
        name="performance",
        scope="model",
        settings=PerformanceSettings,
        inputs=("performance_window",),
        evaluate=evaluate,
        default_interval=600.0,
        description="model quality on labelled predictions against a baseline and/or absolute thresholds",
        historical=True,
    )
)
