"""drift: has the distribution of each input feature moved away from the training (reference) data?

Per feature, the window is compared with the model version's reference profile (checks/stats/):

    numeric      KS statistic and p-value, Wasserstein distance / reference std, PSI and Jensen-Shannon
                 distance on the reference's decile bins
    categorical  chi-squared test of homogeneity, PSI and Jensen-Shannon distance on the categories
                 (reference categories rarer than 0.5% pooled, unseen ones in one column), unseen share

Decision rule, the same at every sample size: a feature has drifted only if
  (1) its change is material: an effect size reaches its threshold (numeric: wasserstein_normalized >=
      wasserstein_threshold or psi >= psi_threshold; categorical: js_distance >= js_threshold or psi >=
      psi_threshold), AND
  (2) it is not noise: its test's p-value (KS, resp. chi-squared), Benjamini-Hochberg adjusted across all
      judged features, is <= alpha.
A test alone fires on trivial differences once windows are large (at 1M rows a side, a 0.01 sd shift
has KS p ~ 1e-7), and an effect size alone fires on noise when windows are small; each covers the other's
weak end. The dataset verdict is the share of judged features that drifted.

Config stanza (defaults):

    [models.checks.drift]
    interval = "10m"
    window = "1h"                 # the provider reads the predictions with ts in the last hour...
    max_rows = 1000000            #   ...at most this many, the newest (bounds memory and time)
    min_rows = 1000               # fewer rows in the window -> insufficient_data; features with fewer
                                  #   non-missing values are not judged
    features = []                 # features to judge; empty = every feature of the reference profile
    alpha = 0.001                 # BH-adjusted p-value at or below which a difference is not noise
    wasserstein_threshold = 0.1   # numeric: Wasserstein / reference std (a 0.1 sd shift of the mean)
    psi_threshold = 0.2           # numeric and categorical PSI
    js_threshold = 0.05           # categorical Jensen-Shannon distance (base 2, 0..1)
    warn_share = 0.0              # warn when at least one feature drifted and the drifted share >= this
    crit_share = 0.3              # crit when the drifted share >= this
    reference_max_rows = 250000   # the profile samples the reference down to this many rows
    threads = 2                   # features are compared in parallel (numpy releases the GIL in sort/search)

Why these defaults. Figures from simulated windows with no drift, drawn from the same generator as the
reference with another seed (20 numeric features of 7 shapes: normal, log-normal, exponential, uniform,
Poisson, rounded normal, bimodal; 5 categorical ones with 2 to 20 categories, shares down to 1.5%),
reference and window of equal size n: 2 000 windows at n = 1 000, 400 at 5 000, 300 at 10 000, 30 at
100 000; signals from 1 000 windows at n = 5 000 (tests/checks/test_drift_check.py has the same data).
- wasserstein_threshold 0.1: a mean shift of k standard deviations reads k, so a 0.25 sd shift reads
  0.25 (at n = 5 000: lowest of 1 000 windows 0.19, 1st percentile 0.205). No drift reads, per feature,
  99th / 99.9th percentile 0.12 / 0.16 at n = 1 000, 0.055 / 0.066 at 5 000, 0.037 / 0.048 at 10 000
  and 0.012 / 0.014 at 100 000: from 5 000 rows on the gate alone holds; at 1 000 rows 3.7% of features
  pass it by chance and the test gate decides.
- js_threshold 0.05: a 10-point move of one category's share reads 0.085 or more in the population (the
  least at 50% -> 60%), but a 5 000-row window against a 5 000-row reference sees 0.058 to 0.11 (1st
  percentile 0.067), so the line sits below at 0.05 (about a 6-point move at a 50% share); a new category
  at 5% of rows reads 0.16. No drift reads 99th / 99.9th percentile 0.106 / 0.117 at n = 1 000 (37% of
  categorical features pass by chance, mostly the 10- and 20-category ones), 0.047 / 0.053 at 5 000
  (0.45% pass) and 0.033 / 0.035 at 10 000 (none pass).
- psi_threshold 0.2: the customary "significant shift" line (0.1-0.25 is "moderate"); it catches what
  Wasserstein misses when a few outliers inflate the reference std (a shift of the bulk still moves the
  deciles). A 0.25 sd shift has PSI ~0.06 and a 10-point share move 0.04-0.08, so PSI alone would miss
  both: the distances above are the primary effect sizes. No drift: 99.9th percentile 0.054 (numeric)
  and 0.077 (categorical) at n = 1 000.
- alpha 0.001: BH over all judged features keeps the chance that a window without drift flags any
  feature at or below alpha before the effect gate; at n = 1 000 it is the gate that matters, and with
  alpha 0.01 the simulation flagged a feature in 0.5% of windows (one false warning a day at a 10-minute
  interval), with 0.001 in none of 2 000. Real drift is far below either: the signals above have
  adjusted p-values under 1e-11 at n = 5 000.
- min_rows 1000: the smallest window the figures above vouch for; below it effect sizes are mostly noise
  (their spread goes as 1/sqrt(n)) and only the test gate would stand between noise and an alert.
- warn_share 0 (any drifted feature): with both gates a flagged feature is a real and material change,
  worth a look. crit_share 0.3: about a third of the inputs moved, so the model sees data unlike its
  training data (Evidently calls 0.5 "dataset drift"; crit should page before half the inputs moved).

Inputs (the providers' contract; checks stay pure, DESIGN.md §4):
- `reference_profile`: a checks.stats.ReferenceProfile, or None when the model has no reference. Build it
  once per model version with `profile_from_reference(columns, feature_types, settings, version)` and
  keep it until the version changes (building sorts every numeric column: ~0.06 s per million values).
- `drift_window`: a DriftWindow(columns, n_rows): for each profiled feature (or each of `features`) its
  window column: numeric as a float array (NaN, or a numpy masked array, for NULL), categorical as an
  array/list of str (None for NULL), an Arrow array, or a {category: count} map (DuckDB's GROUP BY is
  the cheapest: the categorical statistics need only counts); n_rows is the window's row count.

Metrics (dims {"feature": name} unless said; p-values and effect sizes are unitless):
    ks_statistic, ks_pvalue, ks_pvalue_adjusted, wasserstein_normalized        numeric features
    chi2_statistic, chi2_pvalue, chi2_pvalue_adjusted, unseen_share            categorical features
    psi, js_distance, drifted (1 drifted, 0 not)                               both
    rows, features_judged, drifted_features, drifted_share (0..1, higher is worse)   dims {}
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from checks.base import CheckResult, CheckSpec, Duration, Metric, Status, format_p, register
from checks.stats.profile import CategoricalReference, ReferenceProfile, kind_of_type
from checks.stats.univariate import (
    UNSEEN,
    CategoricalComparison,
    NumericComparison,
    benjamini_hochberg,
    compare_categorical,
    compare_numeric,
)

TOP_FEATURES = 3  # drifted features named in the reason


@dataclass(frozen=True)
class DriftSettings:
    window: Duration = Duration(3600)
    max_rows: int = 1_000_000
    min_rows: int = 1000
    features: tuple[str, ...] = ()
    alpha: float = 0.001
    wasserstein_threshold: float = 0.1
    psi_threshold: float = 0.2
    js_threshold: float = 0.05
    warn_share: float = 0.0
    crit_share: float = 0.3
    reference_max_rows: int = 250_000
    threads: int = 2


@dataclass(frozen=True)
class DriftWindow:
    """The `drift_window` input: each feature's window column, and the window's row count."""

    columns: Mapping[str, Any]
    n_rows: int


@dataclass(frozen=True)
class FeatureDrift:
    """One judged feature: its statistics, its adjusted p-value and the verdict."""

    name: str
    stats: NumericComparison | CategoricalComparison
    pvalue_adjusted: float
    material: bool  # an effect size reached its threshold
    drifted: bool
    effect: float  # largest effect size / its threshold: how far past the line (ranks features in the reason)

    @property
    def numeric(self) -> bool:
        return isinstance(self.stats, NumericComparison)

    @property
    def pvalue(self) -> float:
        """The unadjusted p-value of the feature's test (KS or chi-squared)."""
        return _pvalue(self.stats)


@dataclass(frozen=True)
class DriftReport:
    features: tuple[FeatureDrift, ...]  # judged features, in profile order
    skipped: tuple[str, ...]  # features with fewer than min_rows values on either side
    n_rows: int

    @property
    def drifted(self) -> tuple[FeatureDrift, ...]:
        return tuple(f for f in self.features if f.drifted)

    @property
    def drifted_share(self) -> float:
        return len(self.drifted) / len(self.features) if self.features else 0.0


def profile_from_reference(columns: Mapping[str, Any], feature_types: Mapping[str, str], settings: DriftSettings,
                           version: str | None = None) -> ReferenceProfile:
    """The profile the daemon caches per model version: config feature types decide numeric vs categorical."""
    kinds = {name: kind_of_type(t) for name, t in feature_types.items() if name in columns}
    # a configured feature the reference lacks is left out here and named by `evaluate` as an error
    selected = {name: columns[name] for name in (settings.features or tuple(kinds)) if name in kinds}
    return ReferenceProfile.build(selected, kinds, max_rows=settings.reference_max_rows, version=version)


def settings_problem(s: DriftSettings) -> str | None:
    """What is wrong with these settings beyond their types (which config validation checks), or None."""
    if not 0 < s.alpha <= 1:
        return f"alpha must be in (0, 1], not {s.alpha:g}"
    if s.min_rows < 1 or s.max_rows < 1 or s.reference_max_rows < 1:
        return "min_rows, max_rows and reference_max_rows must be at least 1"
    if s.threads < 1:
        return "threads must be at least 1"
    if not (0 <= s.warn_share <= 1 and 0 <= s.crit_share <= 1):
        return "warn_share and crit_share are shares of features, between 0 and 1"
    return None


def compare(profile: ReferenceProfile, window: DriftWindow, settings: DriftSettings) -> DriftReport:
    """Every judged feature's statistics and verdict (the check's core, without the status wording)."""
    names = settings.features or profile.names

    def one(name: str) -> NumericComparison | CategoricalComparison:
        ref = profile.features[name]
        values = window.columns[name]
        if isinstance(ref, CategoricalReference):
            return compare_categorical(ref, values, window.n_rows)
        return compare_numeric(ref, values)

    if settings.threads > 1 and len(names) > 1:
        with ThreadPoolExecutor(max_workers=min(settings.threads, len(names)), thread_name_prefix="drift") as pool:
            results = list(pool.map(one, names))
    else:
        results = [one(name) for name in names]

    judged = [(name, s) for name, s in zip(names, results, strict=True)
              if s.n >= settings.min_rows and s.n_ref >= settings.min_rows]
    skipped = tuple(name for name, s in zip(names, results, strict=True)
                    if not (s.n >= settings.min_rows and s.n_ref >= settings.min_rows))
    pvalues = np.array([_pvalue(s) for _, s in judged])
    adjusted = benjamini_hochberg(np.nan_to_num(pvalues, nan=1.0))
    features = []
    for (name, s), p_adj in zip(judged, adjusted, strict=True):
        effect = _effect(s, settings)
        material = effect >= 1.0
        features.append(FeatureDrift(name, s, float(p_adj), material, material and p_adj <= settings.alpha, effect))
    return DriftReport(tuple(features), skipped, window.n_rows)


def evaluate(inputs: Mapping[str, Any], settings: DriftSettings) -> CheckResult:
    """inputs: `reference_profile` (ReferenceProfile or None) and `drift_window` (DriftWindow); see above."""
    problem = settings_problem(settings)
    if problem is not None:
        return CheckResult(Status.ERROR, f"bad drift settings: {problem}")
    profile: ReferenceProfile | None = inputs["reference_profile"]
    window: DriftWindow = inputs["drift_window"]
    if profile is None:
        return CheckResult(Status.INSUFFICIENT_DATA, "no reference data: set the model's `reference` to its "
                                                     "training data to check drift")
    names = settings.features or profile.names
    unknown = [n for n in names if n not in profile.features]
    if unknown:
        return CheckResult(Status.ERROR, f"drift features not in the reference data: {', '.join(unknown)} "
                                         f"(it has {', '.join(profile.names) or 'none'})")
    absent = [n for n in names if n not in window.columns]
    if absent:
        return CheckResult(Status.ERROR, f"the drift window lacks {', '.join(absent)}")
    return judge(profile, window, settings)


def judge(profile: ReferenceProfile, window: DriftWindow, settings: DriftSettings, noun: str = "feature",
          baseline: str = "reference") -> CheckResult:
    """The decision for a profile and a window that match: the same rule for inputs, outputs and labels."""
    rows = Metric("rows", float(window.n_rows))
    if window.n_rows < settings.min_rows:
        return CheckResult(Status.INSUFFICIENT_DATA,
                           f"only {window.n_rows} rows in the window (min_rows {settings.min_rows})", (rows,))
    if profile.n_rows < settings.min_rows:
        return CheckResult(Status.INSUFFICIENT_DATA,
                           f"the {baseline} has only {profile.n_rows} rows (min_rows {settings.min_rows})", (rows,))
    report = compare(profile, window, settings)
    metrics = [rows, *report_metrics(report)]
    status, reason = verdict(report, settings, noun)
    return CheckResult(status, reason, tuple(metrics))


def verdict(report: DriftReport, settings: DriftSettings, noun: str = "feature") -> tuple[Status, str]:
    """Status and reason; `noun` is what the compared columns are (feature, output, label)."""
    judged, drifted = len(report.features), report.drifted
    skipped = ""
    if report.skipped:
        skipped = (f"; not judged (fewer than {settings.min_rows} values): {', '.join(report.skipped[:5])}"
                   + (f" +{len(report.skipped) - 5} more" if len(report.skipped) > 5 else ""))
    if not judged:
        return Status.INSUFFICIENT_DATA, (f"no {noun} has {settings.min_rows} non-missing values "
                                          f"in the window and the reference") + skipped
    if not drifted:
        return Status.OK, f"no drift in {judged} {_plural(noun, judged)} ({report.n_rows} rows){skipped}"
    share = len(drifted) / judged
    status = Status.OK
    if share >= settings.warn_share:
        status = Status.WARN
    if share >= settings.crit_share:
        status = Status.CRIT
    top = sorted(drifted, key=lambda f: -f.effect)
    named = ", ".join(describe(f) for f in top[:TOP_FEATURES])
    more = f", +{len(top) - TOP_FEATURES} more" if len(top) > TOP_FEATURES else ""
    below = f" (below warn_share {settings.warn_share:g})" if status is Status.OK else ""
    return status, f"drift in {len(drifted)}/{judged} {_plural(noun, judged)}{below}: {named}{more}{skipped}"


def describe(f: FeatureDrift) -> str:
    """`name (what moved, effect sizes, test)` for the reason line."""
    s = f.stats
    if isinstance(s, NumericComparison):
        return (f"{f.name} (mean {_num(s.ref_mean)}→{_num(s.window_mean)}, wasserstein "
                f"{s.wasserstein_normalized:.2f} sd, psi {s.psi:.2f}, ks {format_p(f.pvalue_adjusted)})")
    column, before, after = s.largest_share_change()
    if column is UNSEEN:
        names = ", ".join(f"'{cat}' {count / s.n:.1%}" for cat, count in s.unseen[:2])
        more = f" +{len(s.unseen) - 2} more" if len(s.unseen) > 2 else ""
        what = f"{'new category' if len(s.unseen) == 1 else 'new categories'} {names}{more}"
    else:
        what = f"'{column}' {before:.1%}→{after:.1%}"
    return f"{f.name} ({what}, js {s.js_distance:.2f}, psi {s.psi:.2f}, chi2 {format_p(f.pvalue_adjusted)})"


def report_metrics(report: DriftReport) -> list[Metric]:
    metrics: list[Metric] = []
    for f in report.features:
        dims = {"feature": f.name}
        s = f.stats
        if isinstance(s, NumericComparison):
            values = {"ks_statistic": s.ks_statistic, "ks_pvalue": s.ks_pvalue, "ks_pvalue_adjusted": f.pvalue_adjusted,
                      "wasserstein_normalized": s.wasserstein_normalized}
        else:
            values = {"chi2_statistic": s.chi2_statistic, "chi2_pvalue": s.chi2_pvalue,
                      "chi2_pvalue_adjusted": f.pvalue_adjusted, "unseen_share": s.unseen_share}
        values |= {"psi": s.psi, "js_distance": s.js_distance, "drifted": float(f.drifted)}
        metrics += [Metric(name, float(v), dims) for name, v in values.items() if math.isfinite(v)]
    drifted = len(report.drifted)
    metrics += [Metric("features_judged", float(len(report.features))), Metric("drifted_features", float(drifted)),
                Metric("drifted_share", report.drifted_share)]
    return metrics


def _plural(noun: str, count: int) -> str:
    return noun if count == 1 else noun + "s"


def _pvalue(s: NumericComparison | CategoricalComparison) -> float:
    return s.ks_pvalue if isinstance(s, NumericComparison) else s.chi2_pvalue


def _effect(s: NumericComparison | CategoricalComparison, settings: DriftSettings) -> float:
    """The largest effect size relative to its threshold; >= 1 means material."""
    if isinstance(s, NumericComparison):
        pairs = [(s.wasserstein_normalized, settings.wasserstein_threshold), (s.psi, settings.psi_threshold)]
    else:
        pairs = [(s.js_distance, settings.js_threshold), (s.psi, settings.psi_threshold)]
    return max(_ratio(value, limit) for value, limit in pairs)


def _ratio(value: float, limit: float) -> float:
    if math.isnan(value):
        return 0.0
    if limit > 0:
        return value / limit
    return math.inf if value > 0 else 1.0  # a threshold of 0 means "no effect gate": everything is material


def _num(x: float) -> str:
    return f"{x:.3g}" if abs(x) < 1e4 else f"{x:.4g}"


SPEC = register(
    CheckSpec(
        name="drift",
        scope="model",
        settings=DriftSettings,
        inputs=("reference_profile", "drift_window"),
        evaluate=evaluate,
        default_interval=600.0,
        description="per-feature distribution drift against the reference data (KS, Wasserstein, PSI, JS, chi2)",
        historical=True,
    )
)
