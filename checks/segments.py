"""segments: is the model worse, or fed differently, in one slice of its traffic than it should be?

A model can look fine on the whole while one slice of its users pays for it: accuracy 0.61 in one region
hides behind 0.79 overall when that region is a tenth of the traffic. This check cuts the window by the
values of one categorical feature (`column`) and judges each slice on its own:

- performance: the performance check's metric (checks.performance.compute, so scikit-learn's values) on
  the slice's labelled predictions (labels known at evaluation time only), against a baseline: the same
  metric on the same slice of the reference data when the reference carries the model's predictions
  (`prediction`, and `score`) and has `min_labelled` of them in that slice; else the metric on every
  *other* labelled prediction of the window ("a slice much worse than the rest"). The rest rather than
  the whole: a slice that is 80 % of the traffic barely differs from a whole it dominates.
- drift: each feature of the slice (the segment column itself left out: it is constant in a slice)
  against the same slice of the reference, with the drift check's statistics and decision rule
  (checks.drift.compare / verdict: an effect size past its threshold and a BH-adjusted p-value <= alpha).

Config stanza (defaults):

    [models.checks.segments]
    interval = "10m"
    column = "region"             # required: a categorical (string or bool) feature of the model
    window = "1d"                 # predictions with ts in the last day (labels are late, as for performance)
    max_segments = 10             # the 10 largest slices by rows in the window are judged; smaller ones are
                                  #   counted, not judged (see below)
    min_labelled = 100            # a slice with fewer labelled predictions gets no performance verdict
    min_rows = 1000               # a slice with fewer rows (window or reference) gets no drift verdict
    metric = ""                   # "" = accuracy (classification) or rmse (regression), as performance
    degradation_warn = 0.10       # relative: the slice 10 % worse than its baseline -> warn
    degradation_crit = 0.20       # 20 % worse -> crit
    alpha = 0.01                  # the degradation must also be significant (see below)
    positive_class = "1"          # binary classification: the class whose probability `score` is
    features = []                 # drift features; empty = every feature of the model except `column`
                                  #   (one the reference lacks is not compared; one the model lacks: error)
    max_rows = 200000             # drift reads at most the newest 200 000 rows of the window
    drift_alpha = 0.001           # drift's alpha, split over the slices judged (Bonferroni)
    drift_share_warn = 0.0        # any drifted feature in a slice warns ...
    drift_share_crit = 0.3        # ... a third of its features crit (the drift check's defaults)
    reference_max_rows = 250000   # the reference is sampled to this many rows before it is cut into slices

Why these defaults.
- max_segments 10, the rest ignored, not pooled: a pooled "(other)" slice is no population anyone can act
  on, its make-up changes with the top 10 (so against the reference's "(other)" it would drift by
  construction), and the whole model is already judged by the performance and drift checks. The slices
  left out are counted in the reason and in `segments_ignored`. A NULL value is a slice of its own,
  "(missing)": rows without a region are a population worth watching.
- min_labelled 100 (performance's 50 is for the whole model): there are up to ten times as many figures
  here, each on less data; at 100 labels a proportion's standard error is at most 0.05.
- degradation_warn / _crit 0.10 / 0.20 (performance: 0.05 / 0.10): slices are noisier than the whole and,
  without reference predictions, differ from the rest by nature (a harder region); a tenth worse is the
  line where a slice is "much worse", a fifth where it pages.
- alpha 0.01, split over the slices with a baseline (Bonferroni: the check alarms when any slice does):
  a slice alarms on performance only when its degradation passes the threshold AND it is significant:
  a one-sided Welch t-test of the per-row loss of the slice's labelled predictions against the baseline
  rows' (1 - correct for accuracy, squared error for rmse, |error| for mae, |error|/|y| for mape, squared
  score error for brier, per-row log loss), p <= alpha / slices. Simulated with ten slices of 100 labels,
  all at accuracy 0.8, 1 000 runs: the threshold alone warns in 31 % of runs (a 100-label slice drops 10 %
  by chance easily); with the test, 1 run in 1 000 alarms (a slice that fell 20 % by chance, which no test
  can tell from a real drop). The baseline is treated like a sample too (Welch, not a fixed value).
  Metrics that are not a mean over rows (precision, recall, f1, roc_auc, pr_auc, ece, r2) have no such
  test and are judged on the threshold alone: raise min_labelled when judging them.
- min_rows 1000, drift_alpha 0.001, drift_share_warn 0 / _crit 0.3: the drift check's defaults, for which
  its thresholds were calibrated (see checks/drift.py); drift_alpha is divided by the slices judged for
  drift, so ten slices together flag no more noise than the drift check does on the whole.
- max_rows 200 000: a day of a busy model is millions of rows; the newest 200 000 leave every one of ten
  slices of 2 % or more its 1 000 rows. Measured on 2 cores: a 1M-row day with 100k labels, 10 slices and
  4 features runs in 0.8 s (most of it scikit-learn's per-slice metrics), not a heavy check; the first
  run after the reference file changes also cuts it (6 s for 500k rows, then cached).
- reference_max_rows 250 000: the reference is sampled (seeded, the same rows on every build) before it is
  cut, so the per-slice profiles together cost what the drift check's one profile costs.

Inputs (the providers' contract; checks stay pure, DESIGN.md §4):
- `segments_window`: a SegmentsWindow (below): the model's task and categorical features, rows per slice
  in the whole window (DuckDB GROUP BY), the drift rows (segment + feature columns, newest max_rows, only
  the top slices), and the labelled predictions with their segment.
- `segments_reference`: None without a reference; else a SegmentsReference built once per reference file
  and settings by `reference_slices` (per-slice drift profiles, and per-slice baselines when the reference
  has predictions).

Metrics (dims {"segment": value}): rows, labelled, every performance metric of the slice (accuracy, f1...),
baseline_<metric>, degradation (relative, higher is worse), degradation_pvalue, features_judged,
drifted_features, drifted_share, flagged (1 when the slice warns or worse); dims {"segment", "feature"}:
drifted (1/0); dims {}: segments (slices in the window), segments_judged, segments_flagged,
segments_ignored (beyond max_segments).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from checks.base import CheckResult, CheckSpec, Duration, Metric, Status, format_p, register, threshold_status, worst
from checks.drift import DriftReport, DriftSettings, DriftWindow, compare, profile_from_reference, verdict
from checks.performance import LOWER_IS_BETTER, compute, judged_metric
from checks.stats.profile import ReferenceProfile, kind_of_type

MISSING = "(missing)"  # the slice of rows whose segment value is NULL
TOP_SLICES = 3  # flagged slices named in the reason
KNOWN_METRICS = {"accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "log_loss", "brier", "ece",
                 "mae", "rmse", "mape", "r2"}


@dataclass(frozen=True)
class SegmentsSettings:
    column: str = ""
    window: Duration = Duration(86400)
    max_segments: int = 10
    min_labelled: int = 100
    min_rows: int = 1000
    metric: str = ""
    degradation_warn: float = 0.10
    degradation_crit: float = 0.20
    alpha: float = 0.01
    positive_class: str = "1"
    features: tuple[str, ...] = ()
    max_rows: int = 200_000
    drift_alpha: float = 0.001
    drift_share_warn: float = 0.0
    drift_share_crit: float = 0.3
    reference_max_rows: int = 250_000


@dataclass(frozen=True)
class Labelled:
    """Labelled predictions of the window: segment, label, prediction (str arrays) and score (or None)."""

    segment: np.ndarray
    y_true: np.ndarray
    y_pred: np.ndarray
    score: np.ndarray | None = None

    def take(self, mask: np.ndarray) -> Labelled:
        return Labelled(self.segment[mask], self.y_true[mask], self.y_pred[mask],
                        None if self.score is None else self.score[mask])

    def __len__(self) -> int:
        return len(self.y_true)


@dataclass(frozen=True)
class SegmentsWindow:
    """The `segments_window` input."""

    task: str
    features: tuple[str, ...]  # the model's features: what `features` may name
    categorical: tuple[str, ...]  # its categorical ones: what `column` may name
    volumes: Mapping[str, int]  # rows per slice in the whole window
    segment: np.ndarray  # the slice of each drift row
    columns: Mapping[str, Any]  # feature -> drift column, aligned with `segment`
    labelled: Labelled


@dataclass(frozen=True)
class SliceBaseline:
    """One slice of the reference's outcomes: labelled rows, every metric, the judged metric's row losses."""

    labelled: int
    metrics: Mapping[str, float]
    losses: np.ndarray | None


@dataclass(frozen=True)
class SegmentsReference:
    """The `segments_reference` input (None when the model has no reference)."""

    has_column: bool  # False: the reference lacks `column`, so no slice can be compared with it
    rows: Mapping[str, int]  # reference rows per slice (after sampling)
    profiles: Mapping[str, ReferenceProfile]  # slices with at least min_rows rows
    baselines: Mapping[str, SliceBaseline] | None  # None when the reference has no predictions


@dataclass(frozen=True)
class SlicePerformance:
    labelled: int
    metrics: Mapping[str, float]
    value: float
    baseline: float | None
    source: str  # "reference" or "other slices"
    degradation: float | None  # relative, higher is worse
    change: float | None  # relative change of the metric, signed
    pvalue: float | None  # one-sided Welch test of the row losses; None when the metric has none
    status: Status = Status.OK
    held_back: bool = False  # past a threshold but not significant, so ok


@dataclass(frozen=True)
class SliceResult:
    name: str
    rows: int  # in the whole window
    labelled: int
    performance: SlicePerformance | None  # None: fewer than min_labelled labels
    drift: DriftReport | None  # None: not judged for drift
    status: Status


# -- helpers shared with the providers and the fairness check -----------------------------------------------

def categorical_features(features: Mapping[str, str]) -> tuple[str, ...]:
    """Features whose config/DuckDB type is a category (strings, booleans): what a slice can be cut by."""
    out = []
    for name, type_name in features.items():
        try:
            if kind_of_type(type_name) == "categorical":
                out.append(name)
        except ValueError:
            continue
    return tuple(out)


def column_problem(column: str, categorical: tuple[str, ...], key: str = "column") -> str | None:
    """Why `column` cannot cut the traffic, naming the features that can; None when it can."""
    have = ", ".join(categorical) or "none"
    if not column:
        return f"set `{key}` to one of the model's categorical features ({have})"
    if column not in categorical:
        return f"{key} {column!r} is not a categorical feature of the model (categorical features: {have})"
    return None


def top_segments(volumes: Mapping[str, int], max_segments: int) -> list[str]:
    """The `max_segments` largest slices, largest first (ties by name, so runs agree)."""
    ranked = sorted(volumes.items(), key=lambda item: (-item[1], str(item[0])))
    return [str(name) for name, n in ranked[:max_segments] if n > 0]


def row_losses(metric: str, task: str, y_true: np.ndarray, y_pred: np.ndarray, score: np.ndarray | None,
               positive: str) -> np.ndarray | None:
    """Per-row losses whose mean moves with `metric` (higher = worse), or None for a metric that is not a
    mean over rows. rmse is judged on squared errors: sqrt is monotone, so "rmse higher" = "mse higher"."""
    if metric == "accuracy":
        return (y_true.astype(str) != y_pred.astype(str)).astype(float)
    if task == "regression" and metric in ("rmse", "mae", "mape"):
        t, p = y_true.astype(float), y_pred.astype(float)
        error = np.abs(t - p)
        if metric == "rmse":
            return error**2
        if metric == "mae":
            return error
        return error / np.maximum(np.abs(t), np.finfo(np.float64).eps)  # as scikit-learn's mape
    if metric in ("brier", "log_loss") and score is not None and not np.isnan(score).any():
        truth = (y_true.astype(str) == positive).astype(float)
        if metric == "brier":
            return (score - truth) ** 2
        s = np.clip(score, 1e-15, 1 - 1e-15)
        return -(truth * np.log(s) + (1 - truth) * np.log(1 - s))
    return None


def from_losses(metric: str, losses: np.ndarray) -> float:
    """The metric from its row losses (what scikit-learn computes, without its label encoding: the baseline
    of every slice is all the other rows, and scikit-learn on 100k string labels takes 0.5 s a call)."""
    mean = float(losses.mean())
    if metric == "accuracy":
        return 1.0 - mean
    return math.sqrt(mean) if metric == "rmse" else mean


def welch_greater(a: np.ndarray, b: np.ndarray) -> float:
    """One-sided Welch t-test p-value that mean(a) > mean(b), as scipy.stats.ttest_ind(a, b,
    equal_var=False, alternative="greater"); constant samples give 0 or 1 instead of scipy's NaN."""
    na, nb = a.size, b.size
    if na < 2 or nb < 2:
        return math.nan
    va, vb = a.var(ddof=1) / na, b.var(ddof=1) / nb
    diff = float(a.mean() - b.mean())
    if va + vb == 0:
        return 0.0 if diff > 0 else 1.0
    t = diff / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1))
    from scipy.special import stdtr  # lazy: the CLI imports every check

    return float(stdtr(df, -t))


def reference_slices(segment: np.ndarray, columns: Mapping[str, Any], feature_types: Mapping[str, str],
                     outcomes: Labelled | None, task: str, settings: SegmentsSettings,
                     version: str | None = None) -> SegmentsReference:
    """Cut the reference into slices: a drift profile per slice with min_rows rows, and when the reference has
    predictions (`outcomes`, with their own segment) each slice's metrics and row losses. The caller caches it.

    The rows are sampled (seeded) to reference_max_rows before cutting, so all profiles together hold what
    the drift check's one profile holds."""
    segment = np.asarray(segment, dtype=object)
    if segment.size > settings.reference_max_rows:
        keep = np.sort(np.random.default_rng(0).choice(segment.size, settings.reference_max_rows, replace=False))
        segment = segment[keep]
        columns = {name: values[keep] for name, values in columns.items()}
    names, counts = np.unique(segment, return_counts=True)
    rows = {str(n): int(c) for n, c in zip(names, counts, strict=True)}
    drift = DriftSettings(features=tuple(columns), reference_max_rows=max(segment.size, 1))
    profiles = {}
    for name in (n for n, c in rows.items() if c >= settings.min_rows):
        mask = segment == name
        profiles[name] = profile_from_reference({f: v[mask] for f, v in columns.items()}, feature_types, drift,
                                                version)
    baselines = None
    if outcomes is not None:
        metric = judged_metric(settings, task)
        baselines = {}
        labels, labelled = np.unique(outcomes.segment.astype(object), return_counts=True)
        for name, n in zip(labels, labelled, strict=True):
            if n < settings.min_labelled:
                continue
            part = outcomes.take(outcomes.segment == name)
            baselines[str(name)] = SliceBaseline(
                int(n), compute(task, part.y_true, part.y_pred, part.score, settings.positive_class),
                row_losses(metric, task, part.y_true, part.y_pred, part.score, settings.positive_class))
    return SegmentsReference(True, rows, profiles, baselines)


# -- judging ----------------------------------------------------------------------------------------------

def settings_problem(s: SegmentsSettings) -> str | None:
    """What is wrong with these settings beyond their types and the column (which needs the model), or None."""
    if s.metric and s.metric not in KNOWN_METRICS:
        return f"metric {s.metric!r} is not one of {', '.join(sorted(KNOWN_METRICS))}"
    if not (0 < s.alpha <= 1 and 0 < s.drift_alpha <= 1):
        return "alpha and drift_alpha must be in (0, 1]"
    if min(s.max_segments, s.min_labelled, s.min_rows, s.max_rows, s.reference_max_rows) < 1:
        return "max_segments, min_labelled, min_rows, max_rows and reference_max_rows must be at least 1"
    if not (0 <= s.drift_share_warn <= 1 and 0 <= s.drift_share_crit <= 1):
        return "drift_share_warn and drift_share_crit are shares of features, between 0 and 1"
    return None


def evaluate(inputs: Mapping[str, Any], settings: SegmentsSettings) -> CheckResult:
    """inputs: `segments_window` (SegmentsWindow) and `segments_reference` (SegmentsReference or None)."""
    w: SegmentsWindow = inputs["segments_window"]
    problem = settings_problem(settings) or column_problem(settings.column, w.categorical)
    unknown = [f for f in settings.features if f not in w.features]
    if unknown and problem is None:
        problem = f"features not in the model: {', '.join(unknown)} (it has {', '.join(w.features) or 'none'})"
    if problem is not None:
        return CheckResult(Status.ERROR, f"bad segments settings: {problem}")
    ref: SegmentsReference | None = inputs["segments_reference"]
    metric = judged_metric(settings, w.task)
    slices = top_segments(w.volumes, settings.max_segments)
    ignored = sum(n > 0 for n in w.volumes.values()) - len(slices)
    totals = [Metric("segments", float(len(slices) + ignored)), Metric("segments_ignored", float(ignored))]
    if not slices:
        return CheckResult(Status.INSUFFICIENT_DATA, f"no predictions in the window to cut by {settings.column}",
                           tuple(totals))
    try:
        performance = judge_performance(w, ref, slices, metric, settings)
    except UnavailableMetric as exc:
        return CheckResult(Status.ERROR, f"metric {metric!r} is not available for this model (has {exc})")
    drift = judge_drift(w, ref, slices, settings)
    names, counts = np.unique(w.labelled.segment.astype(object), return_counts=True)
    labelled = {str(n): int(c) for n, c in zip(names, counts, strict=True)}
    volumes = {str(k): int(v) for k, v in w.volumes.items()}
    results = [_result(name, volumes[name], labelled.get(name, 0), performance.get(name), drift.get(name))
               for name in slices]
    judged = [r for r in results if r.status is not Status.INSUFFICIENT_DATA]
    flagged = [r for r in judged if r.status.severity > 0]
    metrics = [*totals, Metric("segments_judged", float(len(judged))), Metric("segments_flagged", float(len(flagged))),
               *(m for r in results for m in slice_metrics(r, metric))]
    notes = _notes(results, ignored, ref, settings)
    column = settings.column
    if not judged:
        largest = results[0]
        return CheckResult(Status.INSUFFICIENT_DATA,
                           f"no slice of {column} has {settings.min_labelled} labelled predictions or "
                           f"{settings.min_rows} rows with reference rows to compare (largest: {column}="
                           f"{largest.name}, {largest.rows} rows, {largest.labelled} labelled){notes}",
                           tuple(metrics))
    status = worst([r.status for r in judged])
    if not flagged:
        plural = "s" if len(judged) > 1 else ""
        return CheckResult(status, f"{len(judged)} slice{plural} of {column} judged, none degraded or drifted"
                                   f"{_closest(judged, column, metric)}{notes}", tuple(metrics))
    ranked = sorted(flagged, key=_rank)
    named = "; ".join(describe(r, column, metric) for r in ranked[:TOP_SLICES])
    more = f"; +{len(ranked) - TOP_SLICES} more" if len(ranked) > TOP_SLICES else ""
    return CheckResult(status, f"{len(flagged)}/{len(judged)} slices of {column} off: {named}{more}{notes}",
                       tuple(metrics))


class UnavailableMetric(Exception):
    """The judged metric is not among those computed for this model (its message: the ones that are)."""


def judge_performance(w: SegmentsWindow, ref: SegmentsReference | None, slices: list[str], metric: str,
                      s: SegmentsSettings) -> dict[str, SlicePerformance]:
    """Each slice with min_labelled labels: its metric, baseline, degradation and test; then the verdicts,
    with alpha split over the slices that have a test."""
    lab = w.labelled
    baselines = ref.baselines if ref is not None and ref.baselines is not None else {}
    found: dict[str, SlicePerformance] = {}
    for name in slices:
        mask = lab.segment == name
        n = int(mask.sum())
        if n < s.min_labelled:
            continue
        part = lab.take(mask)
        values = compute(w.task, part.y_true, part.y_pred, part.score, s.positive_class)
        if metric not in values:
            raise UnavailableMetric(", ".join(values))
        value = values[metric]
        losses = row_losses(metric, w.task, part.y_true, part.y_pred, part.score, s.positive_class)
        base, source, base_losses = None, "", None
        if name in baselines and metric in baselines[name].metrics:
            b = baselines[name]
            base, source, base_losses = b.metrics[metric], "reference", b.losses
        elif len(lab) - n >= s.min_labelled:
            rest = lab.take(~mask)
            source = "other slices"
            base_losses = row_losses(metric, w.task, rest.y_true, rest.y_pred, rest.score, s.positive_class)
            base = from_losses(metric, base_losses) if base_losses is not None else compute(
                w.task, rest.y_true, rest.y_pred, rest.score, s.positive_class).get(metric)
        degradation = change = pvalue = None
        if base is not None:
            scale = abs(base) if base else 1.0
            change = (value - base) / scale
            degradation = change if metric in LOWER_IS_BETTER else -change
            if losses is not None and base_losses is not None:
                pvalue = welch_greater(losses, base_losses)
        found[name] = SlicePerformance(n, values, value, base, source, degradation, change, pvalue)
    tested = sum(p.pvalue is not None for p in found.values())
    alpha = s.alpha / max(tested, 1)
    return {name: _judge(p, alpha, s) for name, p in found.items()}


def _judge(p: SlicePerformance, alpha: float, s: SegmentsSettings) -> SlicePerformance:
    """Threshold first; a slice past it whose test does not reach alpha is held back (ok, and says so)."""
    if p.degradation is None:
        return p
    status = threshold_status(p.degradation, s.degradation_warn, s.degradation_crit)
    held_back = status is not Status.OK and p.pvalue is not None and not p.pvalue <= alpha
    return dataclasses.replace(p, status=Status.OK if held_back else status, held_back=held_back)


def judge_drift(w: SegmentsWindow, ref: SegmentsReference | None, slices: list[str],
                s: SegmentsSettings) -> dict[str, tuple[DriftReport, Status]]:
    """Each slice with min_rows drift rows and a reference profile, against that profile; drift_alpha is
    split over those slices."""
    if ref is None or not ref.profiles:
        return {}
    masks = {name: w.segment == name for name in slices if name in ref.profiles}
    eligible = {name: mask for name, mask in masks.items() if int(mask.sum()) >= s.min_rows}
    base = DriftSettings(min_rows=s.min_rows, alpha=s.drift_alpha / max(len(eligible), 1),
                         warn_share=s.drift_share_warn, crit_share=s.drift_share_crit)
    out = {}
    for name, mask in eligible.items():
        profile = ref.profiles[name]
        settings = dataclasses.replace(base, features=tuple(f for f in profile.names if f in w.columns))
        window = DriftWindow({f: w.columns[f][mask] for f in settings.features}, int(mask.sum()))
        report = compare(profile, window, settings)
        status, _ = verdict(report, settings)
        out[name] = (report, status)
    return out


def _result(name: str, rows: int, labelled: int, perf: SlicePerformance | None,
            drift: tuple[DriftReport, Status] | None) -> SliceResult:
    """A slice's status: the worse of its judged parts; insufficient_data when neither was judged."""
    statuses = [perf.status] if perf is not None else []
    report = None
    if drift is not None and drift[1] is not Status.INSUFFICIENT_DATA:
        report = drift[0]
        statuses.append(drift[1])
    return SliceResult(name, rows, labelled, perf, report, worst(statuses) if statuses else Status.INSUFFICIENT_DATA)


def describe(r: SliceResult, column: str, metric: str) -> str:
    """`column=value: accuracy 0.61 vs reference 0.79 (-23%), drift in 2/4 features (a, b)`."""
    parts = []
    if r.performance is not None:
        parts.append(_performance_text(r.performance, metric))
    if r.drift is not None:
        drifted = sorted(r.drift.drifted, key=lambda f: -f.effect)
        if drifted:
            names = ", ".join(f.name for f in drifted[:TOP_SLICES])
            more = f" +{len(drifted) - TOP_SLICES} more" if len(drifted) > TOP_SLICES else ""
            parts.append(f"drift in {len(drifted)}/{len(r.drift.features)} features ({names}{more})")
        else:
            n = len(r.drift.features)
            parts.append(f"no drift in {n} feature{'s' if n != 1 else ''}")
    return f"{column}={r.name}: " + ", ".join(parts)


def _performance_text(p: SlicePerformance, metric: str) -> str:
    if p.baseline is None:
        return f"{metric} {p.value:.3g} (no baseline)"
    note = f", not significant: {format_p(p.pvalue)}" if p.held_back and p.pvalue is not None else ""
    return f"{metric} {p.value:.3g} vs {p.source} {p.baseline:.3g} ({p.change:+.0%}{note})"


def slice_metrics(r: SliceResult, metric: str) -> list[Metric]:
    dims = {"segment": r.name}
    out = [Metric("rows", float(r.rows), dims), Metric("labelled", float(r.labelled), dims)]
    p = r.performance
    if p is not None:
        out += [Metric(k, float(v), dims) for k, v in p.metrics.items() if math.isfinite(v)]
        if p.baseline is not None and p.degradation is not None:
            out.append(Metric(f"baseline_{metric}", float(p.baseline), dims))
            out.append(Metric("degradation", float(p.degradation), dims))
        if p.pvalue is not None and math.isfinite(p.pvalue):
            out.append(Metric("degradation_pvalue", p.pvalue, dims))
    if r.drift is not None:
        out += [Metric("features_judged", float(len(r.drift.features)), dims),
                Metric("drifted_features", float(len(r.drift.drifted)), dims),
                Metric("drifted_share", r.drift.drifted_share, dims)]
        out += [Metric("drifted", float(f.drifted), {**dims, "feature": f.name}) for f in r.drift.features]
    if r.status is not Status.INSUFFICIENT_DATA:
        out.append(Metric("flagged", float(r.status.severity > 0), dims))
    return out


def _rank(r: SliceResult) -> tuple[float, float, float]:
    """Flagged slices, most urgent first: status, then degradation, then drifted share."""
    p = r.performance
    degradation = p.degradation if p is not None and p.degradation is not None else -math.inf
    share = r.drift.drifted_share if r.drift is not None else 0.0
    return -r.status.severity, -degradation, -share


def _closest(judged: list[SliceResult], column: str, metric: str) -> str:
    """For an ok reason: the slice furthest below its baseline, so a reader sees how close it came."""
    scored = [r for r in judged if r.performance is not None and r.performance.degradation is not None]
    if not scored:
        return ""
    r = max(scored, key=lambda x: x.performance.degradation)
    return f" (worst {column}={r.name}: {_performance_text(r.performance, metric)})"


def _notes(results: list[SliceResult], ignored: int, ref: SegmentsReference | None, s: SegmentsSettings) -> str:
    notes = []
    small = [r for r in results if r.status is Status.INSUFFICIENT_DATA]
    if small:
        notes.append(f"{len(small)} too small to judge")
    if ignored:
        notes.append(f"{ignored} smaller not judged (max_segments {s.max_segments})")
    if ref is not None and not ref.has_column:
        notes.append(f"the reference has no column {s.column}: no drift, baselines from the other slices")
    return "; " + "; ".join(notes) if notes else ""


SPEC = register(
    CheckSpec(
        name="segments",
        scope="model",
        settings=SegmentsSettings,
        inputs=("segments_window", "segments_reference"),
        evaluate=evaluate,
        default_interval=600.0,
        description="performance and drift per slice of a categorical feature, each against its own baseline",
        historical=True,
        heavy=False,
    )
)
