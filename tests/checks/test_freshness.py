"""freshness: the age of the newest prediction against warn/crit limits."""

from checks.base import Status
from checks.freshness import FreshnessSettings, evaluate

SETTINGS = FreshnessSettings(warn_after=60, crit_after=600)


def run(age: float | None):
    return evaluate({"now": 10_000.0, "newest_prediction_ts": None if age is None else 10_000.0 - age}, SETTINGS)


def test_thresholds():
    assert run(5).status is Status.OK
    assert run(60).status is Status.WARN
    assert run(599).status is Status.WARN
    assert run(600).status is Status.CRIT


def test_reason_and_metric_say_how_old():
    result = run(180)
    assert result.reason == "newest prediction 3m ago (limit 60s)"
    assert [(m.name, m.value) for m in result.metrics] == [("age_seconds", 180.0)]


def test_nothing_logged_is_insufficient_data_not_an_alarm():
    result = run(None)
    assert result.status is Status.INSUFFICIENT_DATA and result.metrics == ()


def test_clock_skew_never_gives_negative_age():
    assert run(-30).metrics[0].value == 0.0
