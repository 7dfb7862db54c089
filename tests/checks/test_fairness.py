"""fairness: fairlearn's demographic parity and equal opportunity differences, computed independently here
(numpy and scikit-learn's recall per group), alarming only on a gap that is material and significant."""

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import recall_score

from checks.base import Status
from checks.fairness import FairnessSettings, FairnessWindow, GroupCounts, evaluate, pairwise

SETTINGS = FairnessSettings(protected="region")


def rows(rng, sizes, positive_rate, tpr, base_rate=0.3, labelled=1.0):
    """Per-row group, prediction, label (None = not labelled yet) with the given per-group rates."""
    group = np.repeat(list(sizes), list(sizes.values()))
    label = (rng.random(group.size) < base_rate).astype(int)
    # among label positives, predicted positive with probability tpr[g]; negatives fill up positive_rate[g]
    p_neg = {g: max(0.0, (positive_rate[g] - base_rate * tpr[g]) / (1 - base_rate)) for g in sizes}
    chance = np.where(label == 1, np.vectorize(tpr.get)(group), np.vectorize(p_neg.get)(group))
    pred = (rng.random(group.size) < chance).astype(int)
    known = rng.random(group.size) < labelled
    y_true = np.where(known, label.astype(str), None)
    return group, pred, label, known, y_true


def judge(group, pred, y_true, settings=SETTINGS):
    counts = GroupCounts.from_rows(group, pred.astype(str), y_true, settings.positive_class)
    return evaluate({"fairness_counts": FairnessWindow("classification", ("region", "gender"), counts)}, settings)


def value(result, name, **dims):
    found = [m.value for m in result.metrics if m.name == name and dict(m.dims) == dims]
    assert len(found) == 1, (name, dims, found)
    return found[0]


def test_differences_equal_fairlearns_definitions_computed_with_numpy_and_scikit_learn():
    rng = np.random.default_rng(0)
    sizes = {"north": 3000, "south": 2000, "east": 1500, "central": 800}
    group, pred, label, known, y_true = rows(rng, sizes, {"north": 0.42, "south": 0.35, "east": 0.3, "central": 0.24},
                                             {"north": 0.8, "south": 0.78, "east": 0.75, "central": 0.7},
                                             labelled=0.7)
    result = judge(group, pred, y_true)
    selection = {g: np.mean(pred[group == g] == 1) for g in sizes}  # fairlearn's selection_rate
    tpr = {g: recall_score(label[(group == g) & known], pred[(group == g) & known], pos_label=1) for g in sizes}
    assert value(result, "demographic_parity_difference") == pytest.approx(
        max(selection.values()) - min(selection.values()), abs=1e-12)
    assert value(result, "equal_opportunity_difference") == pytest.approx(max(tpr.values()) - min(tpr.values()),
                                                                          abs=1e-12)
    for g in sizes:
        assert value(result, "positive_rate", group=g) == pytest.approx(selection[g], abs=1e-12)
        assert value(result, "tpr", group=g) == pytest.approx(tpr[g], abs=1e-12)
        assert value(result, "rows", group=g) == sizes[g]
    assert value(result, "groups_judged") == 4 and value(result, "groups_judged_equal_opportunity") == 4


def test_pairwise_p_values_are_the_chi_squared_test_of_each_2x2_table_bonferroni_adjusted():
    x, n = np.array([120.0, 90.0, 60.0]), np.array([300.0, 280.0, 200.0])
    i, j, gap, p = pairwise(x, n)
    for a, b, g, adjusted in zip(i, j, gap, p, strict=True):
        table = [[x[a], n[a] - x[a]], [x[b], n[b] - x[b]]]
        expected = stats.chi2_contingency(table, correction=False).pvalue
        assert adjusted == pytest.approx(min(1.0, 3 * expected), rel=1e-9)
        assert g == pytest.approx(abs(x[a] / n[a] - x[b] / n[b]), abs=1e-15)


def test_a_disparity_between_groups_is_flagged_and_named():
    rng = np.random.default_rng(1)
    sizes = {"north": 2000, "south": 2000, "central": 2000}
    group, pred, _, _, y_true = rows(rng, sizes, {"north": 0.42, "south": 0.35, "central": 0.24},
                                     {"north": 0.8, "south": 0.8, "central": 0.8})
    result = judge(group, pred, y_true)
    assert result.status is Status.WARN, result.reason  # ~0.18: past 0.1, short of 0.2
    high = np.mean(pred[group == "north"])
    low = np.mean(pred[group == "central"])
    assert result.reason.startswith(f"demographic parity difference {high - low:.2f} (north {high:.2f} vs "
                                    f"central {low:.2f}, p<1e-6; warn at 0.1), equal opportunity difference")
    assert result.reason.endswith("; 3 groups of region")
    assert value(result, "demographic_parity_pvalue") < 1e-6
    # unequal opportunity: positives of one group are caught far less often
    group, pred, _, _, y_true = rows(rng, sizes, {"north": 0.3, "south": 0.3, "central": 0.3},
                                     {"north": 0.85, "south": 0.85, "central": 0.55})
    result = judge(group, pred, y_true)
    assert result.status is Status.CRIT and "equal opportunity difference 0.3" in result.reason


def test_equal_groups_are_not_flagged_over_seeds_even_where_small_groups_differ_by_chance():
    past_threshold = 0
    for seed in range(40):
        rng = np.random.default_rng(100 + seed)
        sizes = {"a": 100, "b": 120, "c": 3000, "d": 2000}
        group, pred, _, _, y_true = rows(rng, sizes, dict.fromkeys(sizes, 0.3), dict.fromkeys(sizes, 0.7))
        result = judge(group, pred, y_true)
        assert result.status is Status.OK, result.reason
        past_threshold += value(result, "demographic_parity_difference") >= 0.1
    assert past_threshold >= 3  # the raw difference crossed 0.1 by chance: the test kept those quiet


def test_too_few_rows_or_groups_is_insufficient_data():
    rng = np.random.default_rng(2)
    group, pred, _, _, y_true = rows(rng, {"a": 5000}, {"a": 0.3}, {"a": 0.7})
    one = judge(group, pred, y_true)
    assert one.status is Status.INSUFFICIENT_DATA and "fewer than 2 groups" in one.reason
    group, pred, _, _, y_true = rows(rng, {"a": 90, "b": 80}, {"a": 0.9, "b": 0.1}, {"a": 0.9, "b": 0.1})
    small = judge(group, pred, y_true)  # a huge gap, on too few rows to judge
    assert small.status is Status.INSUFFICIENT_DATA
    # parity judged, equal opportunity not: too few labelled positives (only 5 % of rows labelled)
    group, pred, _, _, y_true = rows(rng, {"a": 1000, "b": 1000}, {"a": 0.3, "b": 0.3}, {"a": 0.7, "b": 0.7},
                                     labelled=0.05)
    partial = judge(group, pred, y_true)
    assert partial.status is Status.OK
    assert "equal opportunity: fewer than 2 groups with 50 labelled positives" in partial.reason
    assert value(partial, "groups_judged_equal_opportunity") == 0


def test_groups_subset_and_settings_errors():
    rng = np.random.default_rng(3)
    sizes = {"north": 2000, "south": 2000, "central": 2000}
    group, pred, _, _, y_true = rows(rng, sizes, {"north": 0.3, "south": 0.3, "central": 0.6},
                                     dict.fromkeys(sizes, 0.8))
    chosen = judge(group, pred, y_true, FairnessSettings(protected="region", groups=("north", "south", "west")))
    assert chosen.status is Status.OK and "2 groups of region; not in the window: west" in chosen.reason
    counts = GroupCounts.from_rows(group, pred.astype(str), y_true, "1")
    regression = evaluate({"fairness_counts": FairnessWindow("regression", ("region",), counts)}, SETTINGS)
    assert regression.status is Status.ERROR and regression.reason.startswith("fairness needs a classification model")
    unset = evaluate({"fairness_counts": FairnessWindow("classification", ("region", "gender"), counts)},
                     FairnessSettings())
    assert unset.status is Status.ERROR and "`protected`" in unset.reason and "(region, gender)" in unset.reason
