"""fairness: does the model treat the groups of a protected attribute alike?

Two of the customary group-fairness measures, over the groups of one categorical feature (`protected`),
with the definitions of fairlearn (`demographic_parity_difference` and `equal_opportunity_difference`,
method "between_groups"; fairlearn is not a dependency, the tests check the figures against
scikit-learn's recall and numpy per group):

- demographic parity difference: max - min over groups of P(prediction = positive_class), the share of
  each group's predictions that are positive; every prediction in the window counts (no label needed);
- equal opportunity difference: max - min over groups of the true positive rate, P(prediction positive |
  label positive), on the predictions whose label is known at evaluation time (point in time) and is the
  positive class.

Each is judged on the groups that meet its minimum (min_rows predictions, resp. min_positives labelled
positives); with every group judged the figures are fairlearn's exactly. Fewer than two judged groups
leave that measure insufficient_data; both insufficient is the check's status.

Decision rule: a measure alarms only when some pair of judged groups differs by at least its threshold AND
that pair's difference is significant: a two-proportion z-test (pooled, two-sided; equal to the chi-squared
test of the 2 x 2 table without continuity correction), its p-value Bonferroni-adjusted over the k(k-1)/2
pairs of k groups, <= alpha. The reported difference is fairlearn's max - min whatever its significance;
the status is driven by the largest significant gap, which is the max/min pair unless that pair is too
small to tell. So two 100-prediction groups at 0.30 and 0.42 (a 0.12 gap, p = 0.08) do not warn, while a
gap of 0.12 between groups of 2 000 (p < 1e-6) does.

Config stanza (defaults):

    [models.checks.fairness]
    interval = "10m"
    protected = "gender"               # required: a categorical (string or bool) feature of the model
    positive_class = "1"               # the favourable (or the flagged) outcome, as predictions write it
    groups = []                        # groups to compare; empty = every value in the window (NULL: none)
    window = "7d"
    min_rows = 100                     # a group with fewer predictions is not judged for demographic parity
    min_positives = 50                 # ... with fewer labelled positives, not for equal opportunity
    demographic_parity_warn = 0.1
    demographic_parity_crit = 0.2
    equal_opportunity_warn = 0.1
    equal_opportunity_crit = 0.2
    alpha = 0.01                       # Bonferroni-adjusted p-value at or below which a gap is not noise

Why these defaults.
- window 7d (performance's is 1d): fairness is a property of how the model treats people over time, not an
  incident to catch in minutes, and equal opportunity needs labelled positives per group, the scarcest
  count there is (a 20 % positive class, half of it labelled within the week, gives a 1 000-a-day group
  700 a week); a week also holds every weekday's mix once.
- min_rows 100 / min_positives 50: a rate's standard error is at most 0.05 at 100 and 0.07 at 50, below the
  0.1 line, and the z-test's normal approximation holds for rates from about 5 % up (5 expected in a cell).
  min_positives rather than a count of labelled predictions: a true positive rate is a proportion over the
  labelled positives alone; 100 labels with 5 positives give a rate of +-0.2.
- thresholds 0.1 / 0.2: groups a tenth of the outcome apart are treated materially differently (the
  four-fifths rule of US hiring guidance, a ratio, draws its line 0.08 apart at a 40 % rate and 0.1 apart
  at 50 %); a fifth apart pages.
- alpha 0.01 after Bonferroni: the measure is a max over pairs, so the test must be too; at a 10-minute
  interval a per-run false alarm rate of 1 % would still be a false page a day for a model whose groups
  are equal, so the gap has to be both material and beyond noise (the drift check's rule, for the same
  reason).

The model must be a classifier (a regression model has no positive prediction: error). positive_class is
compared with the prediction and the label as strings.

Inputs (the provider's contract): `fairness_counts`, a FairnessWindow: the task, the model's categorical
features, and per group (DuckDB, one GROUP BY over the window joined with the labels known now): rows,
predicted positives, labelled positives, true positives.

Metrics (dims {"group": g}): rows, positive_rate, label_positives, tpr (groups with a labelled positive);
dims {}: demographic_parity_difference, demographic_parity_pvalue (max/min pair, adjusted), groups_judged
(for demographic parity), equal_opportunity_difference, equal_opportunity_pvalue,
groups_judged_equal_opportunity.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from checks.base import CheckResult, CheckSpec, Duration, Metric, Status, format_p, register, threshold_status, worst
from checks.segments import column_problem


@dataclass(frozen=True)
class FairnessSettings:
    protected: str = ""
    positive_class: str = "1"
    groups: tuple[str, ...] = ()
    window: Duration = Duration(7 * 86400)
    min_rows: int = 100
    min_positives: int = 50
    demographic_parity_warn: float = 0.1
    demographic_parity_crit: float = 0.2
    equal_opportunity_warn: float = 0.1
    equal_opportunity_crit: float = 0.2
    alpha: float = 0.01


@dataclass(frozen=True)
class GroupCounts:
    """Per group of the protected attribute (aligned arrays)."""

    groups: tuple[str, ...]
    rows: np.ndarray  # predictions
    predicted_positive: np.ndarray  # predictions that are positive_class
    label_positive: np.ndarray  # labelled predictions whose label is positive_class
    true_positive: np.ndarray  # ... and whose prediction is positive_class too

    @classmethod
    def from_rows(cls, group: np.ndarray, y_pred: np.ndarray, y_true: np.ndarray, positive: str) -> GroupCounts:
        """Counts from row arrays (y_true None/NaN where unlabelled): what the provider's GROUP BY computes."""
        group = np.asarray(group).astype(str)
        predicted = np.asarray(y_pred).astype(str) == positive
        label = np.asarray(y_true, dtype=object)
        positive_label = np.not_equal(label, None) & (label.astype(str) == positive)
        names, index = np.unique(group, return_inverse=True)

        def count(flags: np.ndarray) -> np.ndarray:
            return np.bincount(index, weights=flags.astype(float), minlength=names.size).astype(np.int64)

        return cls(tuple(str(n) for n in names), np.bincount(index, minlength=names.size).astype(np.int64),
                   count(predicted), count(positive_label), count(positive_label & predicted))

    def subset(self, keep: np.ndarray) -> GroupCounts:
        return GroupCounts(tuple(g for g, k in zip(self.groups, keep, strict=True) if k), self.rows[keep],
                           self.predicted_positive[keep], self.label_positive[keep], self.true_positive[keep])


@dataclass(frozen=True)
class FairnessWindow:
    """The `fairness_counts` input."""

    task: str
    categorical: tuple[str, ...]
    counts: GroupCounts


@dataclass(frozen=True)
class Gap:
    """One measure over the judged groups: fairlearn's difference and the pair behind the status."""

    name: str  # "demographic parity" / "equal opportunity"
    judged: tuple[str, ...]
    rates: np.ndarray
    difference: float  # max - min over the judged groups
    high: str  # the groups at the max and the min
    low: str
    pvalue: float  # adjusted, of the max/min pair
    significant_gap: float  # the largest gap between a pair with adjusted p <= alpha (0 when none)
    significant_pair: tuple[str, str] | None
    status: Status


def pairwise(successes: np.ndarray, totals: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every pair i < j: (i, j, |rate_i - rate_j|, Bonferroni-adjusted two-sided pooled z-test p-value)."""
    i, j = np.triu_indices(totals.size, 1)
    rates = successes / totals
    gap = np.abs(rates[i] - rates[j])
    pooled = (successes[i] + successes[j]) / (totals[i] + totals[j])
    se = np.sqrt(pooled * (1 - pooled) * (1 / totals[i] + 1 / totals[j]))
    z = np.divide(gap, se, out=np.zeros_like(gap), where=se > 0)
    from scipy.special import ndtr  # lazy: the CLI imports every check

    p = np.where(se > 0, 2 * ndtr(-z), 1.0)
    return i, j, gap, np.minimum(p * max(i.size, 1), 1.0)


def measure(name: str, groups: tuple[str, ...], successes: np.ndarray, totals: np.ndarray, minimum: int,
            warn: float, crit: float, alpha: float) -> Gap | None:
    """The measure over groups with at least `minimum` in `totals`; None with fewer than two such groups."""
    keep = totals >= minimum
    if keep.sum() < 2:
        return None
    judged = tuple(g for g, k in zip(groups, keep, strict=True) if k)
    x, n = successes[keep].astype(float), totals[keep].astype(float)
    rates = x / n
    hi, lo = int(np.argmax(rates)), int(np.argmin(rates))
    i, j, gap, p = pairwise(x, n)
    pair = np.flatnonzero(((i == hi) & (j == lo)) | ((i == lo) & (j == hi)))
    p_extremes = float(p[pair[0]]) if pair.size else 1.0  # no pair when every rate is equal (hi == lo)
    significant = p <= alpha
    best, best_pair = 0.0, None
    if significant.any():
        k = int(np.argmax(np.where(significant, gap, -1.0)))
        best = float(gap[k])
        a, b = (int(i[k]), int(j[k])) if rates[i[k]] >= rates[j[k]] else (int(j[k]), int(i[k]))
        best_pair = (judged[a], judged[b])
    status = threshold_status(best, warn, crit)
    return Gap(name, judged, rates, float(rates[hi] - rates[lo]), judged[hi], judged[lo], p_extremes, best, best_pair,
               status)


def settings_problem(s: FairnessSettings) -> str | None:
    """What is wrong with these settings beyond their types and `protected` (which needs the model), or None."""
    if not 0 < s.alpha <= 1:
        return f"alpha must be in (0, 1], not {s.alpha:g}"
    if s.min_rows < 1 or s.min_positives < 1:
        return "min_rows and min_positives must be at least 1"
    thresholds = (s.demographic_parity_warn, s.demographic_parity_crit, s.equal_opportunity_warn,
                  s.equal_opportunity_crit)
    if not all(0 <= t <= 1 for t in thresholds):
        return "the parity thresholds are differences of rates, between 0 and 1"
    return None


def evaluate(inputs: Mapping[str, Any], settings: FairnessSettings) -> CheckResult:
    """inputs: `fairness_counts` (FairnessWindow)."""
    w: FairnessWindow = inputs["fairness_counts"]
    if w.task != "classification":
        return CheckResult(Status.ERROR, "fairness needs a classification model (this one is a regression model)")
    problem = settings_problem(settings) or column_problem(settings.protected, w.categorical, "protected")
    if problem is not None:
        return CheckResult(Status.ERROR, f"bad fairness settings: {problem}")
    c = w.counts
    absent = ""
    if settings.groups:
        c = c.subset(np.array([g in settings.groups for g in c.groups], dtype=bool))
        missing = [g for g in settings.groups if g not in c.groups]
        absent = f"; not in the window: {', '.join(missing)}" if missing else ""
    s = settings
    parity = measure("demographic parity", c.groups, c.predicted_positive, c.rows, s.min_rows,
                     s.demographic_parity_warn, s.demographic_parity_crit, s.alpha)
    opportunity = measure("equal opportunity", c.groups, c.true_positive, c.label_positive, s.min_positives,
                          s.equal_opportunity_warn, s.equal_opportunity_crit, s.alpha)
    metrics = group_metrics(c) + gap_metrics(parity, "demographic_parity", "groups_judged") + gap_metrics(
        opportunity, "equal_opportunity", "groups_judged_equal_opportunity")
    where = f"{len(c.groups)} group{'s' if len(c.groups) != 1 else ''} of {s.protected}{absent}"
    if parity is None and opportunity is None:
        return CheckResult(Status.INSUFFICIENT_DATA,
                           f"fewer than 2 groups with {s.min_rows} predictions or {s.min_positives} labelled "
                           f"positives ({where})", tuple(metrics))
    parts, statuses = [], []
    for name, gap, minimum, unit, warn, crit in (
            ("demographic parity", parity, s.min_rows, "predictions", s.demographic_parity_warn,
             s.demographic_parity_crit),
            ("equal opportunity", opportunity, s.min_positives, "labelled positives", s.equal_opportunity_warn,
             s.equal_opportunity_crit)):
        if gap is None:
            parts.append(f"{name}: fewer than 2 groups with {minimum} {unit}")
            continue
        statuses.append(gap.status)
        parts.append(describe(gap, warn, crit, s.alpha))
    return CheckResult(worst(statuses), ", ".join(parts) + f"; {where}", tuple(metrics))


def describe(g: Gap, warn: float, crit: float, alpha: float) -> str:
    """`demographic parity difference 0.18 (north 0.42 vs central 0.24, p<1e-6; warn at 0.1)`."""
    rate = dict(zip(g.judged, g.rates, strict=True))
    text = f"{g.name} difference {g.difference:.2f} ({g.high} {rate[g.high]:.2f} vs {g.low} {rate[g.low]:.2f}, " \
           f"{format_p(g.pvalue)}"
    if g.difference >= warn and g.pvalue > alpha:
        text += ": not significant"
    if g.significant_pair is not None and g.significant_pair != (g.high, g.low) and g.status is not Status.OK:
        a, b = g.significant_pair
        text += f"; significant gap {g.significant_gap:.2f}, {a} {rate[a]:.2f} vs {b} {rate[b]:.2f}"
    if g.status is not Status.OK:
        text += f"; {g.status.value} at {crit if g.status is Status.CRIT else warn:g}"
    return text + ")"


def group_metrics(c: GroupCounts) -> list[Metric]:
    out = []
    for k, group in enumerate(c.groups):
        dims = {"group": group}
        out += [Metric("rows", float(c.rows[k]), dims), Metric("label_positives", float(c.label_positive[k]), dims)]
        if c.rows[k]:
            out.append(Metric("positive_rate", float(c.predicted_positive[k] / c.rows[k]), dims))
        if c.label_positive[k]:
            out.append(Metric("tpr", float(c.true_positive[k] / c.label_positive[k]), dims))
    return out


def gap_metrics(g: Gap | None, prefix: str, judged: str) -> list[Metric]:
    if g is None:
        return [Metric(judged, 0.0)]
    out = [Metric(f"{prefix}_difference", g.difference), Metric(judged, float(len(g.judged)))]
    if math.isfinite(g.pvalue):
        out.append(Metric(f"{prefix}_pvalue", g.pvalue))
    return out


SPEC = register(
    CheckSpec(
        name="fairness",
        scope="model",
        settings=FairnessSettings,
        inputs=("fairness_counts",),
        evaluate=evaluate,
        default_interval=600.0,
        description="demographic parity and equal opportunity differences between the groups of a protected "
                    "attribute",
        historical=True,
        heavy=False,
    )
)
