"""data_quality: nulls, ranges, unseen categories, quarantine and volume, judged from window counts."""

from checks.base import Status
from checks.data_quality import DataQualitySettings, evaluate


def window(rows=1000, quarantined=0, history=(), **features):
    defaults = {"age": {"kind": "numeric", "nulls": 0, "outside": 0, "reference_null_share": 0.0},
                "plan": {"kind": "categorical", "nulls": 0, "outside": 0, "reference_null_share": 0.0}}
    for name, change in features.items():
        defaults[name] = {**defaults[name], **change}
    return {"quality_window": {"rows": rows, "quarantined": quarantined, "history": list(history),
                               "features": defaults}}


def run(inputs, **settings):
    return evaluate(inputs, DataQualitySettings(**settings))


def test_a_clean_window_is_ok():
    result = run(window())
    assert result.status is Status.OK and result.reason == "1000 rows, 2 features as in training"


def test_nulls_are_judged_against_the_training_share():
    assert run(window(age={"nulls": 100, "reference_null_share": 0.08})).status is Status.OK  # 10 % vs 8 %
    warned = run(window(age={"nulls": 100}))
    assert warned.status is Status.WARN and "age empty in 10.0% of rows (training 0.0%)" in warned.reason
    assert run(window(age={"nulls": 300})).status is Status.CRIT


def test_out_of_range_and_unseen_categories():
    result = run(window(age={"outside": 20}, plan={"outside": 80}))
    assert result.status is Status.CRIT
    assert result.reason.startswith("plan has categories unseen in training in 8.0% of rows")
    assert "age outside the training range in 2.0% of rows" in result.reason


def test_quarantine_rate():
    result = run(window(rows=950, quarantined=50))
    assert result.status is Status.CRIT and "5.0% of records quarantined (50/1000)" in result.reason


def test_volume_against_the_models_own_history():
    assert run(window(rows=1000, history=[1000, 980, 1020])).status is Status.OK
    low = run(window(rows=300, history=[1000, 980, 1020]))
    assert low.status is Status.WARN and low.reason == "300 rows, 30% of the usual 1000"
    high = run(window(rows=5000, history=[1000, 980, 1020]))
    assert high.status is Status.WARN and "5.0x the usual 1000" in high.reason
    assert run(window(rows=300, history=[1000, 980])).status is Status.OK  # too little history to judge


def test_a_collapse_below_min_rows_is_still_reported():
    assert run(window(rows=10)).status is Status.INSUFFICIENT_DATA
    collapsed = run(window(rows=10, history=[1000, 1000, 1000]))
    assert collapsed.status is Status.WARN and "10 rows, 1% of the usual 1000" in collapsed.reason
